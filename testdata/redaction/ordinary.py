"""Settings, a login view and a CLI that handle passwords, secrets and tokens, none of them here."""

import argparse
import getpass
import logging
import os
import secrets

import psycopg2
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

log = logging.getLogger(__name__)

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DEBUG") == "1"
PASSWORD_MIN_LENGTH = 12

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.getenv("DB_NAME", "app"),
        "USER": os.getenv("DB_USER", "app"),
        "PASSWORD": os.getenv("DB_PASSWORD", ""),
        "HOST": os.getenv("DB_HOST", "localhost"),
    }
}


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=8)])


def connect(host, user, password=None):
    if password is None:
        password = getpass.getpass("Password: ")
    return psycopg2.connect(host=host, user=user, password=password, dbname="app")


def dsn(user, pw, host):
    return f"postgresql://{user}:{pw}@{host}/app"


def register(user, form):
    user.password_hash = generate_password_hash(form.password.data)
    log.info("password set for %s", user.email)


def login(user, password):
    if not check_password_hash(user.password_hash, password):
        log.warning("wrong password for %s", user.email)
        return False
    return True


def new_api_secret():
    secret = secrets.token_hex(32)
    return secret


def reset_link(user, token):
    return "https://example.com/reset?user=%s&token=%s" % (user.id, token)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--password", help="the password (default: prompt)")
    parser.add_argument("--secret", default=None, help="the signing secret")
    args = parser.parse_args()
    password = args.password or os.environ.get("PGPASSWORD")
    conn = connect("localhost", "app", password=password)
    print("Password: " + ("*" * len(password or "")))
    print("connected" if conn else "failed")


if __name__ == "__main__":
    main()
