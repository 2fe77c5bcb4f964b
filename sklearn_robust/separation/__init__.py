"""r-separation of labelled data (Yang et al. 2020)."""
