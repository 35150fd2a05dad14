"""The console pages of gateway sessions: views and their URLconf (mounted by ``gatehouse.console_urls``)."""
