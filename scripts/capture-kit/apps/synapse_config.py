#!/usr/bin/env python3
"""Local changes to the homeserver.yaml that Synapse generated (see captures/synapse.md).

Usage: synapse_config.py HOMESERVER_YAML   (rewritten in place)
"""
import re, sys
path = sys.argv[1]
text = open(path).read()
# only the client listener (no federation), IPv4 loopback only
text = text.replace("    - ::1\n", "").replace("      - federation\n", "")
text = re.sub(r'trusted_key_servers:\n  - server_name: "matrix.org"\n', "trusted_key_servers: []\n", text)
many = "{per_second: 1000, burst_count: 10000}"
text += f"""
# --- changes for the capture ---
public_baseurl: "http://chat.example/"
enable_registration: false
suppress_key_server_warning: true
federation_domain_whitelist: []
user_directory:
  search_all_users: true
# presence off, as on many large servers: fewer /sync wake-ups and a smaller capture
presence:
  enabled: false
# rate limits raised so that attacks and the burst are not simply cut off by 429
rc_message: {many}
rc_registration: {many}
rc_registration_token_validity: {many}
rc_login:
  address: {many}
  account: {many}
  failed_attempts: {many}
rc_admin_redaction: {many}
rc_joins:
  local: {many}
  remote: {many}
rc_joins_per_room: {many}
rc_3pid_validation: {many}
rc_invites:
  per_room: {many}
  per_user: {many}
  per_issuer: {many}
rc_room_creation: {many}
rc_presence:
  per_user: {many}
rc_user_directory: {many}
rc_delayed_event_mgmt: {many}
rc_reports: {many}
rc_media_create: {many}
rc_key_requests: {many}
rc_profile: {many}
"""
open(path, "w").write(text)
