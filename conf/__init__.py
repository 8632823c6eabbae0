"""The Hydra configs as a package (`pkg://underpainting.conf`), so an installed underpainting has them; in the
repository this folder is `conf/` and `src/underpainting/conf` links to it."""
