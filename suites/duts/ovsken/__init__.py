"""The ovs DUT's controller: an os-ken app programming an Open vSwitch bridge (see app.py)."""
