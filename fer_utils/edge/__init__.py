"""Edge deployment: TFLite, SavedModel and frozen-graph exports, and the AWS DeepLens bundle."""
