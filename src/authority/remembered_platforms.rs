//! Platforms as enrollments last read them, so an enrollment needs no read of its own before
//! it decrypts. Its one read before signing ([`crate::store::Backend::enrollment_lookup`])
//! returns the platform as it is now; a remembered copy that differs is replaced and the
//! request processed again with the current one, so no decision (cipher policy, device-id
//! pattern, challenge mode and secret) rests on settings that have changed, whichever node
//! changed them. Nothing is written before that read, so processing again is safe.
//!
//! Only platforms the store returned are remembered, and one found deleted is forgotten: the
//! map holds the platforms that exist or recently existed, never what a URL names.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::store::Platform;

/// Most platforms remembered; past it the map starts again (a bound, far above real fleets).
const MAX_REMEMBERED: usize = 10_000;

/// The platforms enrollments last read, by id.
#[derive(Debug, Default)]
pub(super) struct RememberedPlatforms {
    by_id: RwLock<HashMap<String, Arc<Platform>>>,
}

impl RememberedPlatforms {
    /// The copy last read of platform `id`, if any.
    pub(super) fn get(&self, id: &str) -> Option<Arc<Platform>> {
        // A poisoned lock only means a panic elsewhere while holding it: the map is still a
        // valid map of read platforms.
        let map = self.by_id.read().unwrap_or_else(PoisonError::into_inner);
        map.get(id).cloned()
    }

    /// Remembers `platform` as read just now.
    pub(super) fn remember(&self, platform: Arc<Platform>) {
        let mut map = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= MAX_REMEMBERED && !map.contains_key(&platform.id) {
            map.clear();
        }
        map.insert(platform.id.clone(), platform);
    }

    /// Forgets platform `id` (it was deleted).
    pub(super) fn forget(&self, id: &str) {
        let mut map = self.by_id.write().unwrap_or_else(PoisonError::into_inner);
        map.remove(id);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    #[test]
    fn remembers_replaces_and_forgets() {
        let remembered = RememberedPlatforms::default();
        let mut p = Platform {
            id: "p1".into(),
            name: "Fleet".into(),
            challenge: crate::store::ChallengeConfig::Static {
                secret_hash: vec![7; 32],
            },
            allow_des: false,
            created_at: 1,
            device_id_pattern: None,
        };
        assert!(remembered.get("p1").is_none());
        remembered.remember(Arc::new(p.clone()));
        assert_eq!(*remembered.get("p1").unwrap(), p);
        p.allow_des = true;
        remembered.remember(Arc::new(p.clone()));
        assert!(remembered.get("p1").unwrap().allow_des);
        remembered.forget("p1");
        assert!(remembered.get("p1").is_none());
    }
}
