"""The BPGAN codec around the integer decoder.

prior      per-channel integer frequency tables from training latents (2**24 per row, every symbol >= 1)
context    optional context prior: each symbol conditioned on the one above and the previous channel's
entropy    constriction ANS coding with exactly those integer tables;  ans_ref: firmware_ref/ans.py re-exported
bitstream  the versioned .bpg format (layout in firmware_ref/bitstream.py) with constriction coding
fingerprint the model hash a stream is bound to
search     BPGAN ADMM latent search through the generator
image_io   image files <-> [-1, 1] tensors (stride padding, mode notes), int8 output -> PNG
codec      encode_image / decode_image: the pieces glued once, decoder engine pluggable
"""
