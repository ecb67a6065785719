"""The networks, the custom Keras layers saved inside them, and saving models with their sidecars."""
