//! Configs for sites that keep their own DHCP, TFTP and web servers (being written).
