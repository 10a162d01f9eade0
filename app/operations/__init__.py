"""Operations outside the domain layer: backups and restores of the embedded database."""
