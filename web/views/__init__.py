"""The web app's pages: the member's tree (browse), one file or folder, the trash, and the
account pages (account)."""
