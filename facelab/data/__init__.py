"""Face data: synthetic faces with ground truth, real dataset loaders, background variants."""
