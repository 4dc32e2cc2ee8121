"""The inventory model on the controller: checks run before anything changes, and what the firewall derives from it."""
