"""NanoEval's pytest entry point: one thin module per benchmark (test_<name>.py) and the plugin's hooks."""
