"""The plugin host: hook specs, the plugin manager factory, the registries, components built by
name for other components, and the plugin listing."""
