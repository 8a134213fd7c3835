from django.contrib.auth.hashers import PBKDF2PasswordHasher


class RigPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 150_000
