"""Reconstruction networks of the EI paper: the residual UNet and :math:`f = G \\circ A^\\dagger`."""

from .unet import EIUNet, ei_reconstructor

__all__ = ["EIUNet", "ei_reconstructor"]
