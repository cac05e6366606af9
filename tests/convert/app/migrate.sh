#!/bin/sh
# Stands in for a migration in the export fixtures.
echo "migrating to $2"
