from keras_fool.cli import main

main(prog_name="keras-fool")
