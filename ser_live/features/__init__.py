"""What turns an analysis window into a model's input: the extractor seam, handcrafted features, the speech encoder."""
