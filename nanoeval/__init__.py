"""NanoEval: a pytest-native evaluation harness for small language and vision-language models."""
__version__ = "0.1.0"
