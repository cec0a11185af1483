package container

// Routers classify their own errors with marker methods (httpstatus reads them).
type invalidParamErr string

func (e invalidParamErr) Error() string     { return string(e) }
func (e invalidParamErr) InvalidParameter() {}
