package types

// StartFailure says why the runtime could not start a process's command.
type StartFailure int

const (
	// CommandNotFound: the command does not exist, or is not in $PATH.
	CommandNotFound StartFailure = iota + 1
	// CommandNotInvokable: the command exists but cannot be executed (permission denied).
	CommandNotInvokable
	// MountTypeMismatch: a mount puts a file onto a directory or a directory onto a file.
	MountTypeMismatch
	// ProcessConfigRefused: any other refusal of the process's configuration (a missing working
	// directory, a bad user).
	ProcessConfigRefused
)

// ProcessStartError is returned by Container.NewTask and Process.Start when the runtime refused to start
// the process because of the process's own configuration (its command, working directory or mounts), as
// opposed to a failure of the runtime. It is of class InvalidArgument; its message is the runtime's, as
// dockerd shows it.
type ProcessStartError struct {
	Reason StartFailure
	Msg    string
}

func (e *ProcessStartError) Error() string { return e.Msg }

// InvalidParameter puts the error in containerd/errdefs' InvalidArgument class.
func (e *ProcessStartError) InvalidParameter() {}
