package image

// Routers classify their own errors with marker methods (httpstatus reads them), so they stay free of
// dependencies beyond api/types and api/server.
type invalidParamErr string

func (e invalidParamErr) Error() string     { return string(e) }
func (e invalidParamErr) InvalidParameter() {}

type notFoundErr string

func (e notFoundErr) Error() string { return string(e) }
func (e notFoundErr) NotFound()     {}
