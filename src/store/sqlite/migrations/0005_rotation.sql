-- scepd schema version 5: staged CA rotation.

-- When a 'next' authority should become active by itself (NULL: on explicit activation).
ALTER TABLE authorities ADD COLUMN activate_at INTEGER;
