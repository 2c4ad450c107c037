"""``python -m keras_fool``: the command line."""

from keras_fool.cli import main

main(prog_name="keras-fool")
