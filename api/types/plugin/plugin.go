// Package plugin owns the wire form of the Engine API's managed-plugin endpoints. Standard library only.
package plugin

// Plugin is one managed plugin as GET /plugins and /plugins/{name}/json show it.
type Plugin struct {
	ID              string `json:"Id,omitempty"`
	Name            string
	Enabled         bool
	PluginReference string `json:"PluginReference,omitempty"`
	Settings        Settings
	Config          Config
}

// Settings are the values a user may change with `docker plugin set`.
type Settings struct {
	Mounts  []Mount
	Env     []string
	Args    []string
	Devices []Device
}

// Config is the plugin's manifest (config.json in a plugin image or `plugin create` tarball).
type Config struct {
	DockerVersion   string `json:",omitempty"`
	Description     string
	Documentation   string
	Interface       Interface
	Entrypoint      []string
	WorkDir         string
	User            User `json:",omitempty"`
	Network         Network
	Linux           Linux
	PropagatedMount string
	IpcHost         bool
	PidHost         bool
	Mounts          []Mount
	Env             []Env
	Args            Args
	Rootfs          *Rootfs `json:"rootfs,omitempty"`
}

// Interface says what the plugin implements and where its socket is.
type Interface struct {
	Types          []string
	Socket         string
	ProtocolScheme string `json:",omitempty"`
}

// User is the declared plugin user.
type User struct {
	UID uint32 `json:"UID,omitempty"`
	GID uint32 `json:"GID,omitempty"`
}

// Network is the plugin's network mode.
type Network struct{ Type string }

// Linux holds the plugin's Linux privileges.
type Linux struct {
	Capabilities    []string
	AllowAllDevices bool
	Devices         []Device
}

// Mount is a mount the plugin asks for.
type Mount struct {
	Name        string
	Description string
	Settable    []string
	Source      *string
	Destination string
	Type        string
	Options     []string
}

// Device is a device the plugin asks for.
type Device struct {
	Name        string
	Description string
	Settable    []string
	Path        *string
}

// Env is one settable environment variable.
type Env struct {
	Name        string
	Description string
	Settable    []string
	Value       *string
}

// Args are the plugin's settable arguments.
type Args struct {
	Name        string
	Description string
	Settable    []string
	Value       []string
}

// Rootfs records the layers of the plugin's filesystem.
type Rootfs struct {
	DiffIds []string `json:"diff_ids,omitempty"`
	Type    string   `json:"type,omitempty"`
}

// Privilege is one permission the plugin needs, as `docker plugin install` shows it.
type Privilege struct {
	Name        string
	Description string
	Value       []string
}
