package service

// CreateConfig collects CreateOptions.
type CreateConfig struct {
	Options   map[string]string
	Labels    map[string]string
	Reference string
}

// CreateOption changes how a volume is created.
type CreateOption func(*CreateConfig)

// WithCreateOptions sets the driver options.
func WithCreateOptions(opts map[string]string) CreateOption {
	return func(c *CreateConfig) { c.Options = opts }
}

// WithCreateLabels sets the labels.
func WithCreateLabels(labels map[string]string) CreateOption {
	return func(c *CreateConfig) {
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		for k, v := range labels {
			c.Labels[k] = v
		}
	}
}

// WithCreateLabel adds one label.
func WithCreateLabel(k, v string) CreateOption {
	return WithCreateLabels(map[string]string{k: v})
}

// WithCreateReference takes a reference for holder ref (a container ID) atomically with the create, so
// no prune or rm can slip in between.
func WithCreateReference(ref string) CreateOption {
	return func(c *CreateConfig) { c.Reference = ref }
}

// GetConfig collects GetOptions.
type GetConfig struct {
	Driver        string
	Reference     string
	ResolveStatus bool
}

// GetOption changes how a volume is looked up.
type GetOption func(*GetConfig)

// WithGetDriver requires the volume to belong to driver (409 otherwise).
func WithGetDriver(driver string) GetOption { return func(c *GetConfig) { c.Driver = driver } }

// WithGetReference takes a reference for holder ref atomically with the lookup.
func WithGetReference(ref string) GetOption { return func(c *GetConfig) { c.Reference = ref } }

// WithGetResolveStatus asks the driver for the volume's Status (inspect).
func WithGetResolveStatus(c *GetConfig) { c.ResolveStatus = true }

// RemoveConfig collects RemoveOptions.
type RemoveConfig struct {
	PurgeOnError bool
}

// RemoveOption changes how a volume is removed.
type RemoveOption func(*RemoveConfig)

// WithPurgeOnError forgets the volume even if the driver fails to remove it, and makes removing an
// unknown volume a success (DELETE ?force=1). It never overrides "volume is in use".
func WithPurgeOnError(b bool) RemoveOption { return func(c *RemoveConfig) { c.PurgeOnError = b } }
