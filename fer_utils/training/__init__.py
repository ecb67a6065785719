"""The training loop with resumable state, augmentation, distillation and the named experiments."""
