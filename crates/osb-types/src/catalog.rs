//! Lookups in a catalog and the effective values of defaulted flags.
//!
//! The spec lets a plan override some of its offering's flags and gives others a default when
//! absent. The models keep those flags as `Option<bool>` so a catalog round-trips unchanged; the
//! helpers here resolve what the flag means:
//!
//! | Helper | Rule |
//! |---|---|
//! | [`Plan::effective_bindable`] | `plan.bindable`, else `offering.bindable` |
//! | [`Plan::effective_plan_updateable`] | `plan.plan_updateable`, else `offering.plan_updateable`, else `false` |
//! | [`Plan::effective_free`] | `plan.free`, else `true` |
//! | [`Plan::effective_binding_rotatable`] | `plan.binding_rotatable`, else `false` |
//! | [`Service::instances_retrievable_or_default`] | `instances_retrievable`, else `false` |
//! | [`Service::bindings_retrievable_or_default`] | `bindings_retrievable`, else `false` |
//! | [`Service::allow_context_updates_or_default`] | `allow_context_updates`, else `false` |
//!
//! Lookups on [`Catalog`] scan the lists and return the first match. A server that looks up a
//! plan on every request builds a [`CatalogIndex`] once instead.

use std::collections::HashMap;

use crate::{Catalog, Plan, Service};

impl Catalog {
    /// The offering with this id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.id == id)
    }

    /// The offering with this name (names are compared case-sensitively).
    pub fn service_by_name(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The plan `plan_id` of the offering `service_id`; `None` when either is unknown or the plan
    /// belongs to another offering.
    pub fn plan(&self, service_id: &str, plan_id: &str) -> Option<&Plan> {
        self.service(service_id)?.plan(plan_id)
    }

    /// The plan with this id, wherever it is, together with its offering.
    pub fn find_plan(&self, plan_id: &str) -> Option<(&Service, &Plan)> {
        self.services
            .iter()
            .find_map(|s| s.plan(plan_id).map(|p| (s, p)))
    }

    /// A lookup index over a copy of this catalog; see [`CatalogIndex`].
    pub fn index(&self) -> CatalogIndex {
        CatalogIndex::new(self)
    }
}

impl Service {
    /// The plan of this offering with this id.
    pub fn plan(&self, plan_id: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.id == plan_id)
    }

    /// The plan of this offering with this name (compared case-sensitively).
    pub fn plan_by_name(&self, name: &str) -> Option<&Plan> {
        self.plans.iter().find(|p| p.name == name)
    }

    /// Whether the broker supports fetching instances of this offering (absent means `false`).
    pub fn instances_retrievable_or_default(&self) -> bool {
        self.instances_retrievable.unwrap_or(false)
    }

    /// Whether the broker supports fetching bindings of this offering (absent means `false`).
    pub fn bindings_retrievable_or_default(&self) -> bool {
        self.bindings_retrievable.unwrap_or(false)
    }

    /// Whether the broker accepts updates that change only the context (absent means `false`).
    pub fn allow_context_updates_or_default(&self) -> bool {
        self.allow_context_updates.unwrap_or(false)
    }
}

impl Plan {
    /// Whether instances of this plan can be bound: the plan's `bindable` when present,
    /// otherwise the offering's.
    pub fn effective_bindable(&self, offering: &Service) -> bool {
        self.bindable.unwrap_or(offering.bindable)
    }

    /// Whether an instance on this plan may move to another plan: the plan's `plan_updateable`
    /// when present, otherwise the offering's, otherwise `false`.
    pub fn effective_plan_updateable(&self, offering: &Service) -> bool {
        self.plan_updateable
            .or(offering.plan_updateable)
            .unwrap_or(false)
    }

    /// Whether the plan is free (absent means `true`).
    pub fn effective_free(&self) -> bool {
        self.free.unwrap_or(true)
    }

    /// Whether bindings of this plan may be rotated (absent means `false`).
    pub fn effective_binding_rotatable(&self) -> bool {
        self.binding_rotatable.unwrap_or(false)
    }
}

/// Constant-time lookups of offerings and plans, built once from a catalog.
///
/// The index owns a copy of the catalog. When ids repeat (a catalog the linter rejects), the
/// first occurrence wins, as with the scanning lookups on [`Catalog`].
///
/// ```
/// use osb_types::{Catalog, Plan, PlanId, Service, ServiceId};
/// let catalog = Catalog::new([Service::new("db", ServiceId::new("svc-1"), "A database", true, [
///     Plan::new(PlanId::new("plan-1"), "small", "Small").with_bindable(false),
/// ])]);
/// let index = catalog.index();
/// let (service, plan) = index.find_plan("plan-1").unwrap();
/// assert_eq!(service.id, "svc-1");
/// assert!(!plan.effective_bindable(service));
/// assert!(index.plan("svc-1", "plan-1").is_some());
/// assert!(index.plan("svc-2", "plan-1").is_none());
/// ```
#[derive(Clone, Debug)]
pub struct CatalogIndex {
    catalog: Catalog,
    services: HashMap<String, ServiceEntry>,
    services_by_name: HashMap<String, usize>,
    plans: HashMap<String, (usize, usize)>,
}

#[derive(Clone, Debug)]
struct ServiceEntry {
    index: usize,
    plans: HashMap<String, usize>,
}

impl CatalogIndex {
    /// Indexes a copy of `catalog`.
    pub fn new(catalog: &Catalog) -> Self {
        Self::from(catalog.clone())
    }

    /// The indexed catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// Gives the catalog back.
    pub fn into_catalog(self) -> Catalog {
        self.catalog
    }

    /// The offering with this id.
    pub fn service(&self, id: &str) -> Option<&Service> {
        self.services
            .get(id)
            .and_then(|entry| self.catalog.services.get(entry.index))
    }

    /// The offering with this name.
    pub fn service_by_name(&self, name: &str) -> Option<&Service> {
        self.services_by_name
            .get(name)
            .and_then(|&i| self.catalog.services.get(i))
    }

    /// The plan `plan_id` of the offering `service_id`; `None` when either is unknown or the plan
    /// belongs to another offering.
    pub fn plan(&self, service_id: &str, plan_id: &str) -> Option<&Plan> {
        self.lookup(service_id, plan_id).map(|(_, plan)| plan)
    }

    /// The offering `service_id` and its plan `plan_id`, as [`CatalogIndex::plan`] finds them.
    pub fn lookup(&self, service_id: &str, plan_id: &str) -> Option<(&Service, &Plan)> {
        let entry = self.services.get(service_id)?;
        let &plan_index = entry.plans.get(plan_id)?;
        let service = self.catalog.services.get(entry.index)?;
        Some((service, service.plans.get(plan_index)?))
    }

    /// The plan with this id, wherever it is, together with its offering.
    pub fn find_plan(&self, plan_id: &str) -> Option<(&Service, &Plan)> {
        let &(s, p) = self.plans.get(plan_id)?;
        let service = self.catalog.services.get(s)?;
        Some((service, service.plans.get(p)?))
    }
}

impl From<Catalog> for CatalogIndex {
    fn from(catalog: Catalog) -> Self {
        let mut services = HashMap::with_capacity(catalog.services.len());
        let mut services_by_name = HashMap::with_capacity(catalog.services.len());
        let mut plans = HashMap::new();
        for (s, service) in catalog.services.iter().enumerate() {
            services_by_name.entry(service.name.clone()).or_insert(s);
            for (p, plan) in service.plans.iter().enumerate() {
                plans.entry(plan.id.to_string()).or_insert((s, p));
            }
            if !services.contains_key(service.id.as_str()) {
                let mut by_id = HashMap::with_capacity(service.plans.len());
                for (p, plan) in service.plans.iter().enumerate() {
                    by_id.entry(plan.id.to_string()).or_insert(p);
                }
                services.insert(
                    service.id.to_string(),
                    ServiceEntry {
                        index: s,
                        plans: by_id,
                    },
                );
            }
        }
        CatalogIndex {
            catalog,
            services,
            services_by_name,
            plans,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PlanId, ServiceId};

    fn catalog() -> Catalog {
        Catalog::new([
            Service::new(
                "db",
                ServiceId::new("svc-1"),
                "A database",
                true,
                [
                    Plan::new(PlanId::new("p-1"), "small", "Small"),
                    Plan::new(PlanId::new("p-2"), "large", "Large")
                        .with_bindable(false)
                        .with_plan_updateable(true)
                        .with_free(false)
                        .with_binding_rotatable(true),
                ],
            ),
            Service::new(
                "queue",
                ServiceId::new("svc-2"),
                "A queue",
                false,
                [Plan::new(PlanId::new("p-3"), "tiny", "Tiny")],
            )
            .with_plan_updateable(true),
        ])
    }

    #[test]
    fn scanning_lookups() {
        let c = catalog();
        assert_eq!(c.service("svc-2").map(|s| s.name.as_str()), Some("queue"));
        assert!(c.service("svc-9").is_none());
        assert_eq!(
            c.service_by_name("db").map(|s| s.id.as_str()),
            Some("svc-1")
        );
        assert!(c.service_by_name("DB").is_none());
        assert_eq!(
            c.plan("svc-1", "p-2").map(|p| p.name.as_str()),
            Some("large")
        );
        assert!(c.plan("svc-2", "p-2").is_none(), "plan of another offering");
        let (s, p) = c.find_plan("p-3").unwrap();
        assert_eq!((s.id.as_str(), p.id.as_str()), ("svc-2", "p-3"));
        assert!(c.find_plan("nope").is_none());
        let db = c.service("svc-1").unwrap();
        assert_eq!(db.plan_by_name("large").map(|p| p.id.as_str()), Some("p-2"));
        assert!(db.plan_by_name("tiny").is_none());
    }

    #[test]
    fn effective_flags_follow_the_spec_defaults() {
        let c = catalog();
        let db = &c.services[0];
        let queue = &c.services[1];
        let small = &db.plans[0];
        let large = &db.plans[1];
        let tiny = &queue.plans[0];
        assert!(small.effective_bindable(db), "inherits the offering's true");
        assert!(!large.effective_bindable(db), "plan overrides");
        assert!(
            !tiny.effective_bindable(queue),
            "inherits the offering's false"
        );
        assert!(!small.effective_plan_updateable(db), "default false");
        assert!(large.effective_plan_updateable(db), "plan value");
        assert!(tiny.effective_plan_updateable(queue), "offering value");
        let mut override_off = tiny.clone();
        override_off.plan_updateable = Some(false);
        assert!(
            !override_off.effective_plan_updateable(queue),
            "plan false beats offering true"
        );
        assert!(small.effective_free());
        assert!(!large.effective_free());
        assert!(!small.effective_binding_rotatable());
        assert!(large.effective_binding_rotatable());
        assert!(!db.instances_retrievable_or_default());
        assert!(!db.bindings_retrievable_or_default());
        assert!(!db.allow_context_updates_or_default());
        let db = db
            .clone()
            .with_instances_retrievable(true)
            .with_bindings_retrievable(true);
        assert!(db.instances_retrievable_or_default() && db.bindings_retrievable_or_default());
    }

    #[test]
    fn index_agrees_with_scanning_lookups() {
        let c = catalog();
        let index = c.index();
        assert_eq!(index.catalog(), &c);
        for (sid, pid) in [
            ("svc-1", "p-1"),
            ("svc-1", "p-2"),
            ("svc-2", "p-3"),
            ("svc-2", "p-1"),
            ("x", "p-1"),
        ] {
            assert_eq!(index.plan(sid, pid), c.plan(sid, pid), "{sid}/{pid}");
        }
        for pid in ["p-1", "p-2", "p-3", "p-4"] {
            assert_eq!(index.find_plan(pid), c.find_plan(pid), "{pid}");
        }
        for name in ["db", "queue", "x"] {
            assert_eq!(index.service_by_name(name), c.service_by_name(name));
        }
        assert_eq!(index.service("svc-2"), c.service("svc-2"));
        let (s, p) = index.lookup("svc-1", "p-2").unwrap();
        assert_eq!((s.id.as_str(), p.id.as_str()), ("svc-1", "p-2"));
        assert_eq!(index.into_catalog(), c);
    }

    #[test]
    fn index_keeps_first_occurrence_of_duplicate_ids() {
        let c = Catalog::new([
            Service::new(
                "a",
                ServiceId::new("svc"),
                "A",
                true,
                [Plan::new(PlanId::new("p"), "one", "One")],
            ),
            Service::new(
                "b",
                ServiceId::new("svc"),
                "B",
                true,
                [
                    Plan::new(PlanId::new("p"), "two", "Two"),
                    Plan::new(PlanId::new("q"), "q", "Q"),
                ],
            ),
        ]);
        let index = CatalogIndex::from(c.clone());
        assert_eq!(index.service("svc").map(|s| s.name.as_str()), Some("a"));
        assert_eq!(index.plan("svc", "p").map(|p| p.name.as_str()), Some("one"));
        assert_eq!(index.plan("svc", "q"), c.plan("svc", "q"));
        assert!(index.plan("svc", "q").is_none());
        assert_eq!(
            index.find_plan("p").map(|(s, _)| s.name.as_str()),
            Some("a")
        );
        assert_eq!(
            index.find_plan("q").map(|(s, _)| s.name.as_str()),
            Some("b")
        );
    }

    #[test]
    fn index_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<CatalogIndex>();
    }
}
