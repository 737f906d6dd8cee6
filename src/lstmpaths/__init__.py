"""lstmpaths: LSTM activations as 2-D/3-D paths, and which relationships survive retraining."""

__version__ = "0.1.0"


def _register_resolvers() -> None:
    """`${lstmpaths_tracking_uri:}` in conf/ resolves to the checkout's SQLite store."""
    from omegaconf import OmegaConf

    from lstmpaths.tracking import default_tracking_uri, project_root, store_folder

    if not OmegaConf.has_resolver("lstmpaths_tracking_uri"):
        OmegaConf.register_new_resolver("lstmpaths_tracking_uri", default_tracking_uri)
    if not OmegaConf.has_resolver("lstmpaths_root"):
        OmegaConf.register_new_resolver("lstmpaths_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("lstmpaths_state_dir"):
        # `${lstmpaths_state_dir:${tracking.uri},${tracking.state_dir}}`: the store's local folder
        OmegaConf.register_new_resolver(
            "lstmpaths_state_dir", lambda uri, state_dir=None: str(store_folder(uri, state_dir))
        )


_register_resolvers()
