"""Test-suite wide settings; the stack fixtures come from the installed faultline plugin."""
