"""The core's own behaviours, each a plugin on the archbench hooks (see ``archbench.plugins``)."""
