"""The one Kubernetes object model every kpy component shares: objects are plain JSON dicts, described by
ResourceInfo entries, with errors that render as Kubernetes Status objects."""
