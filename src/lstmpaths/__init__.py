"""lstmpaths: LSTM activations as 2-D/3-D paths, and which relationships survive retraining."""

__version__ = "0.1.0"


def _register_resolvers() -> None:
    """`${lstmpaths_tracking_uri:}` in conf/ resolves to the checkout's SQLite store, and
    `${lstmpaths_jobs:}` to the sweep jobs this machine runs at once."""
    from omegaconf import OmegaConf

    from lstmpaths.tracking import default_tracking_uri, project_root, store_folder

    if not OmegaConf.has_resolver("lstmpaths_tracking_uri"):
        OmegaConf.register_new_resolver("lstmpaths_tracking_uri", default_tracking_uri)
    if not OmegaConf.has_resolver("lstmpaths_root"):
        OmegaConf.register_new_resolver("lstmpaths_root", lambda: str(project_root()))
    if not OmegaConf.has_resolver("lstmpaths_jobs"):
        # `jobs: ${lstmpaths_jobs:}`: as many sweep jobs at once as this machine's cores and
        # memory allow (processes.default_jobs)
        from lstmpaths.processes import default_jobs

        OmegaConf.register_new_resolver("lstmpaths_jobs", default_jobs)
    if not OmegaConf.has_resolver("lstmpaths_state_dir"):
        # `${lstmpaths_state_dir:${tracking.uri},${tracking.state_dir}}`: the store's local folder
        OmegaConf.register_new_resolver(
            "lstmpaths_state_dir", lambda uri, state_dir=None: str(store_folder(uri, state_dir))
        )


_register_resolvers()
