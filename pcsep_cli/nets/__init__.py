"""Networks: the point-cloud encoder (``visual``), the audio U-Net (``audio``), FiLM
conditioning (``film``) and the whole separator (``model``).

Nothing is imported here, so ``import pcsep_cli.nets`` stays free of torch.
"""
