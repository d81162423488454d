# pytest wiring only: everything lives in the plugin.
pytest_plugins = ["evals.plugin"]
