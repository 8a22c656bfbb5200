"""bpgan-edge toolkit: QAT layers, models, ADMM compression, training and CLIs."""
