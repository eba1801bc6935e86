//! torchvision-exact image preprocessing: image file → normalised `[3, H, W]` values.
