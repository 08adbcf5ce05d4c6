"""A stateful simulator of the Proxmox VE commands pvedr uses (pvesh, ...).

State lives in a data directory ($PVESIM_ROOT); see docs/simulator.md for its layout.
Output follows shared/reference/proxmox.md field by field.
"""
