"""Networks, layers and losses.

``resnet`` (encoders with torchvision names, weight loading), ``layers`` (decoder blocks and the
shared skip trunk), ``flow`` (geometric-pretraining network, paper III-A), ``depth`` (depth and
pose networks for fine-tuning, paper IV), ``geometry`` (pure warping/projection/pose maths) and
``losses`` (pure photometric, smoothness and masking losses, paper III-B and IV).
"""
