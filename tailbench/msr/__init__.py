"""MSR (Zhou, Knowles and Finn, ICLR 2021): reparameterized layers and their meta-training."""
