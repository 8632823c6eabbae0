"""underpainting: reconstructing lost paintings with generative models."""

from underpainting.runtime.precision import register_resolvers

register_resolvers()  # config resolvers (`${fast_precision:...}`) before any config is composed
