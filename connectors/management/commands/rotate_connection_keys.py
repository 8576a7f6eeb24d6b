from django.core.management.base import BaseCommand

from connectors.services import connection_secrets_rotate


class Command(BaseCommand):
    help = (
        "Encrypt every stored bucket secret again under the first key of "
        "STAGECRAFT_ENCRYPTION_KEY (after putting a new key first); then the old keys can go."
    )

    def handle(self, *args, **options):
        rotated, unreadable = connection_secrets_rotate()
        self.stdout.write(f"{rotated} secret(s) encrypted under the first key.")
        for name in unreadable:
            self.stderr.write(f"{name}: unreadable with these keys; enter its secret again.")
