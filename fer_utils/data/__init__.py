"""Reading FER2013, FER+ votes and face folders; labels, splits and the pixel preprocessing."""
