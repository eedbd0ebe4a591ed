"""edkeras: electron-direction reconstruction for DUNE supernova pointing, with Keras 3.

Importing ``edkeras`` does not import TensorFlow or Keras; the modules that need them do.
"""

__version__ = "0.1.0"
