//! `patron demo`: a deterministic, seeded restaurant chain written through the use cases.
//!
//! One call creates the tenant "demo" (a Shanghai chain, 老城南酒家) with three stores,
//! its owner, a menu of about eighty dishes, a handful of organization customers with
//! their employees, and as many members as asked for (default 5,000, at most 1,000,000),
//! about 60% of them with a member card.
//!
//! Determinism: every name, phone, birthday, ID number, preference and card number comes
//! from one `ChaCha8Rng` seeded with [`DemoOptions::seed`], consumed in a fixed order; the
//! same seed and member count give the same people. Ids are fresh; timestamps are relative
//! to the day the demo is generated.
//!
//! Uniqueness is guaranteed by construction rather than by retrying against the database:
//! phones are the image of the member index under a keyed permutation of all numbers
//! with the listed prefixes; resident ID numbers are bumped to the next free sequence
//! number of their area and birth date; emails carry an index-derived number.
//!
//! Every generated profile goes through [`CustomerInput::validate`] like typed input; one
//! that fails is a bug in this generator and is reported as [`AppError::Internal`].
//!
//! History: two years of visits up to today, taken through the till use case at
//! simulated times — top-ups, stored value, points, coupons, gifts, levels, a few
//! same-day reversals — and the chain's setup and its members' sign-ups dated
//! accordingly (see `visits.rs`).

mod data;
mod prices;
mod visits;

use self::data::*;
use crate::auth::InitRequest;
use crate::{Actor, App, AppError, at, new_uuid, now};
use chrono::{Datelike, NaiveDate};
use patron_domain::ValidationErrors;
use patron_domain::card::{Card, CardKinds, CardMedium, CardStatus};
use patron_domain::card_number::with_check_digit;
use patron_domain::customer::{CustomerInput, CustomerProfile, ValidationContext};
use patron_domain::ids::{CardId, CustomerId, MenuItemId, StoreId};
use patron_domain::menu::{MenuCategory, MenuItem};
use patron_domain::money::Money;
use patron_domain::org::{Role, Store};
use patron_domain::search::pinyin_full;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

/// The most members one run generates.
pub const MAX_MEMBERS: u64 = 1_000_000;
/// Members per transaction on large runs. Every member touches a random page of each
/// of the customer indexes (phone, name, pinyin, initials) and every commit rewrites the
/// pages it touched, so fewer, larger transactions write much less: for 1,000,000
/// members on SQLite, batches of 5,000 took 132 s and batches of 20,000 took 91 s
/// (release build, 2 cores). The batch sits in memory before its transaction.
const BATCH: u64 = 20_000;
/// Birthdays are placed relative to this date (not today) so that a seed gives the same
/// people whenever it is run: members are 18–75 years old at the start of 2026.
const ANCHOR_YEAR: i32 = 2026;
/// Card numbers: this prefix, an 11-digit sequence, a Luhn check digit (16 digits).
const CARD_PREFIX: &str = "8860";
const FIRST_CARD: u64 = 1_000_001;

/// What to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DemoOptions {
    /// Individual members (organizations come on top); at most [`MAX_MEMBERS`].
    pub members: u64,
    pub seed: u64,
    /// Two years of visits through the till (default); without, members are on file
    /// with no history (quick runs, tests about people).
    pub history: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            members: 5_000,
            seed: 2026,
            history: true,
        }
    }
}

/// What [`App::generate_demo`]'s progress counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoPhase {
    /// Members written.
    Members,
    /// Bills taken at the till, through the history.
    Checkouts,
}

/// What was generated, and how to log in to look at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoSummary {
    pub tenant_code: String,
    pub owner_username: String,
    pub owner_password: String,
    pub stores: usize,
    pub menu_items: usize,
    pub members: u64,
    pub cards: u64,
    pub organizations: u64,
    /// Bills taken over the two years (reversed ones included).
    pub checkouts: u64,
    /// Bills undone the same day.
    pub reversals: u64,
    pub top_ups: u64,
}

impl App {
    /// Creates tenant "demo" (refused with [`AppError::Conflict`] if it exists) with 3
    /// stores and an owner (username "owner", password "patron-demo"; also "manager",
    /// approval PIN 2468, and "cashier" at the first store), a menu, a few
    /// organization customers and `members` members, then two years of their visits.
    /// `progress(phase, done, total)` is called after each batch of members, then every
    /// few hundred bills.
    pub async fn generate_demo(
        &self,
        opts: DemoOptions,
        progress: &(dyn Fn(DemoPhase, u64, u64) + Send + Sync),
    ) -> Result<DemoSummary, AppError> {
        if opts.members > MAX_MEMBERS {
            return Err(ValidationErrors::single(
                "members",
                "out_of_range",
                format!("at most {MAX_MEMBERS} members"),
            )
            .into());
        }
        let total = opts.members;
        progress(DemoPhase::Members, 0, total);
        // The chain is set up two years ago; members join over the two years.
        let cal = visits::Calendar::new(now());
        let ctx = self.validation_context();

        // Tenant, first store and owner (the Conflict for an existing "demo" comes from here).
        let first = &STORES[0];
        let init = at(
            cal.setup,
            self.init_tenant(InitRequest {
                tenant_code: TENANT_CODE.into(),
                tenant_name: CHAIN_NAME.into(),
                store_code: first.code.into(),
                store_name: first.name.into(),
                username: OWNER_USERNAME.into(),
                display_name: OWNER_DISPLAY_NAME.into(),
                password: OWNER_PASSWORD.into(),
            }),
        )
        .await?;
        let tenant_id = init.tenant.id;
        let mut stores = vec![init.store.id];
        for spec in &STORES[1..] {
            let store = Store {
                tenant_id,
                id: StoreId(new_uuid()),
                code: spec.code.into(),
                name: spec.name.into(),
                address: Some(spec.address.into()),
                phone: Some(spec.phone.into()),
                created_at: cal.setup,
            };
            self.storage.create_store(&store).await?;
            stores.push(store.id);
        }

        // Menu.
        let categories: Vec<MenuCategory> = CATEGORIES
            .iter()
            .zip(1..)
            .map(|(&(name, name_en), order)| MenuCategory {
                tenant_id,
                id: new_uuid(),
                name: name.into(),
                name_en: name_en.into(),
                sort_order: order * 10,
            })
            .collect();
        let items: Vec<MenuItem> = MENU
            .iter()
            .map(|d| MenuItem {
                tenant_id,
                id: MenuItemId(new_uuid()),
                category_id: categories[d.category].id,
                name: d.name.into(),
                name_en: d.name_en.into(),
                price: Money::from_fen(d.price),
                joins_discounts: d.joins_discounts,
                active: true,
            })
            .collect();
        self.storage.insert_menu(&categories, &items).await?;
        at(
            cal.setup,
            prices::record(self, tenant_id, &items, init.owner.id),
        )
        .await?;

        let actor = Actor {
            tenant_id,
            staff_id: init.owner.id,
            role: Role::Owner,
            store_id: None,
            display_name: init.owner.display_name.clone(),
            scope: None,
        };
        // A store manager (approves reversals with PIN 2468) and a cashier at the
        // first store, so the till's approvals can be tried with the demo.
        for (username, display_name, role, store_id, approval_pin) in [
            ("manager", "王店长", Role::Manager, None, Some("2468")),
            ("cashier", "李收银", Role::Cashier, Some(stores[0]), None),
        ] {
            at(
                cal.setup,
                self.create_staff(
                    &actor,
                    &crate::staff::NewStaff {
                        username: username.into(),
                        display_name: display_name.into(),
                        password: OWNER_PASSWORD.into(),
                        role,
                        store_id,
                        limits: None,
                        approval_pin: approval_pin.map(Into::into),
                    },
                ),
            )
            .await?;
        }
        let mut generator = Generator::new(opts.seed);

        // Organizations first: their employees point to them.
        let orgs = generator.organizations(total);
        let mut planned = Vec::with_capacity(orgs.len());
        for (k, input) in orgs.into_iter().enumerate() {
            let profile = validated(ctx, &input, || format!("organization {k}"))?;
            planned.push((generator.orgs[k].store, profile));
        }
        let org_ids = at(cal.setup, self.insert_by_store(&actor, &stores, planned)).await?;

        // Members, in batches of one store each (one transaction per batch): each store
        // has a pending batch, written when full, dated when its first member joins. A
        // referral points to a member already written. Runs up to 50,000 members use
        // small batches, so that sign-ups spread over many dates (about weekly) and small
        // runs have referrals too; larger runs favour speed.
        let batch = if total <= 50_000 {
            (total / 200).max(10)
        } else {
            (total / 50).min(BATCH)
        } as usize;
        let mut pending: Vec<Pending> = (0..stores.len()).map(|_| Pending::default()).collect();
        let mut written = Written {
            ids: Vec::with_capacity(total as usize),
            cards: 0,
            diners: Vec::with_capacity(total as usize),
        };
        for i in 0..total {
            let plan = generator.member(i, written.ids.len() as u64);
            let mut input = plan.input;
            input.organization_id = plan.organization.map(|k| org_ids[k].to_string());
            input.referred_by = plan.referrer.map(|r| written.ids[r as usize].to_string());
            let profile = validated(ctx, &input, || format!("member {i}"))?;
            let queue = &mut pending[plan.store];
            if queue.profiles.is_empty() {
                queue.first = i;
            }
            queue.traits.push(visits::Traits::of(
                input.lifecycle_stage.as_deref(),
                plan.organization.is_some(),
            ));
            queue.profiles.push(profile);
            queue.cards.push(plan.card);
            if queue.profiles.len() >= batch {
                let full = std::mem::take(queue);
                at(
                    cal.joined(full.first, total),
                    self.write_batch(&actor, stores[plan.store], full, &mut written),
                )
                .await?;
                progress(DemoPhase::Members, written.ids.len() as u64, total);
            }
        }
        for (queue, store) in pending.into_iter().zip(&stores) {
            if !queue.profiles.is_empty() {
                at(
                    cal.joined(queue.first, total),
                    self.write_batch(&actor, *store, queue, &mut written),
                )
                .await?;
                progress(DemoPhase::Members, written.ids.len() as u64, total);
            }
        }

        // Gifts, campaigns and two years of visits.
        let history = visits::fill(
            self,
            &actor,
            &cal,
            &stores,
            &items,
            &written.diners,
            opts.seed,
            opts.history,
            &|done, total| progress(DemoPhase::Checkouts, done, total),
        )
        .await?;

        Ok(DemoSummary {
            tenant_code: TENANT_CODE.into(),
            owner_username: OWNER_USERNAME.into(),
            owner_password: OWNER_PASSWORD.into(),
            stores: stores.len(),
            menu_items: items.len(),
            members: total,
            cards: written.cards,
            organizations: org_ids.len() as u64,
            checkouts: history.checkouts,
            reversals: history.reversals,
            top_ups: history.top_ups,
        })
    }

    /// Writes one store's batch of members (one transaction) and then their cards, dated
    /// [`now`] (the caller runs it at the batch's sign-up time).
    async fn write_batch(
        &self,
        actor: &Actor,
        store: StoreId,
        batch: Pending,
        written: &mut Written,
    ) -> Result<(), AppError> {
        let created = self
            .create_customers_bulk(actor, batch.profiles, Some(store))
            .await?;
        let issued_at = now();
        let cards: Vec<Card> = created
            .iter()
            .zip(batch.cards)
            .filter_map(|(c, plan)| {
                plan.map(|p| Card {
                    store_id: Some(store),
                    // 会员卡: stored value, points and member prices.
                    kinds: CardKinds {
                        member_price: true,
                        ..CardKinds::default()
                    },
                    ..Card::new(
                        actor.tenant_id,
                        CardId(new_uuid()),
                        p.number,
                        Some(c.id),
                        p.medium,
                        p.status,
                        issued_at,
                    )
                })
            })
            .collect();
        if !cards.is_empty() {
            self.storage.insert_cards(&cards).await?;
        }
        let active: HashMap<CustomerId, CardId> = cards
            .iter()
            .filter(|k| k.status == CardStatus::Active)
            .filter_map(|k| Some((k.customer_id?, k.id)))
            .collect();
        for (c, traits) in created.iter().zip(batch.traits) {
            written.diners.push(visits::Diner {
                customer: c.id,
                card: active.get(&c.id).copied(),
                store,
                joined: issued_at,
                traits,
            });
        }
        written.cards += cards.len() as u64;
        written.ids.extend(created.into_iter().map(|c| c.id));
        Ok(())
    }

    /// Inserts profiles with their home store (one transaction per store) and returns the
    /// new ids in the order given.
    async fn insert_by_store(
        &self,
        actor: &Actor,
        stores: &[StoreId],
        planned: Vec<(usize, CustomerProfile)>,
    ) -> Result<Vec<CustomerId>, AppError> {
        let n = planned.len();
        let mut groups: Vec<(Vec<usize>, Vec<CustomerProfile>)> =
            vec![(Vec::new(), Vec::new()); stores.len()];
        for (pos, (store, profile)) in planned.into_iter().enumerate() {
            groups[store].0.push(pos);
            groups[store].1.push(profile);
        }
        let mut ids = vec![CustomerId(uuid::Uuid::nil()); n];
        for ((positions, profiles), store) in groups.into_iter().zip(stores) {
            if profiles.is_empty() {
                continue;
            }
            let created = self
                .create_customers_bulk(actor, profiles, Some(*store))
                .await?;
            for (pos, c) in positions.into_iter().zip(created) {
                ids[pos] = c.id;
            }
        }
        Ok(ids)
    }
}

/// Validates a generated profile like typed input; a failure is a bug in the generator.
fn validated(
    ctx: ValidationContext<'_>,
    input: &CustomerInput,
    what: impl FnOnce() -> String,
) -> Result<CustomerProfile, AppError> {
    input.validate(ctx, None).map_err(|e| {
        AppError::Internal(format!(
            "demo data for {} does not validate ({e}): a bug in the generator",
            what()
        ))
    })
}

/// Members generated for one store, not yet written.
#[derive(Default)]
struct Pending {
    profiles: Vec<CustomerProfile>,
    cards: Vec<Option<CardPlan>>,
    traits: Vec<visits::Traits>,
    /// Index of the first member in the batch (its sign-up dates the batch).
    first: u64,
}

/// Members written so far, in the order written (referrals pick from these).
struct Written {
    ids: Vec<CustomerId>,
    cards: u64,
    /// What the history needs of each member, in the order written.
    diners: Vec<visits::Diner>,
}

/// A card to issue to a member once inserted.
struct CardPlan {
    number: String,
    medium: CardMedium,
    status: CardStatus,
}

/// One member as generated: the input without references, and the references as
/// indices (ids exist only once the referenced rows are inserted).
struct MemberPlan {
    input: CustomerInput,
    /// Index into [`STORES`].
    store: usize,
    /// Index of the organization this member works for.
    organization: Option<usize>,
    /// Position, in the order written, of the (already written) member who referred
    /// this one.
    referrer: Option<u64>,
    card: Option<CardPlan>,
}

/// An organization customer and the members (by index) who work there.
struct OrgInfo {
    name: String,
    industry: &'static str,
    domain: String,
    landline: String,
    store: usize,
    employees: Range<u64>,
}

/// Weighted choice by binary search over cumulative weights (zero weights never win).
struct Weighted(Vec<u32>);

impl Weighted {
    fn new(weights: impl IntoIterator<Item = u32>) -> Weighted {
        let mut sum = 0;
        Weighted(
            weights
                .into_iter()
                .map(|w| {
                    sum += w;
                    sum
                })
                .collect(),
        )
    }
    fn of<T>(table: &[(T, u32)]) -> Weighted {
        Weighted::new(table.iter().map(|(_, w)| *w))
    }
    fn pick(&self, rng: &mut impl Rng) -> usize {
        let total = *self.0.last().expect("a non-empty weight table");
        let x = rng.random_range(0..total);
        self.0.partition_point(|&c| c <= x)
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A keyed permutation of `0..size` (size ≤ 2⁶⁴): a four-round balanced Feistel network
/// on the smallest even number of bits that holds `size`, with cycle walking to stay
/// inside the range (fewer than four steps on average). Distinct inputs give distinct
/// outputs, so distinct member indices give distinct phone numbers.
struct Permutation {
    keys: [u64; 4],
    size: u64,
    half_bits: u32,
}

impl Permutation {
    fn new(seed: u64, size: u64) -> Permutation {
        assert!(size > 0);
        let bits = 64 - (size - 1).leading_zeros();
        let keys = [1u64, 2, 3, 4].map(|r| mix(seed ^ mix(r.wrapping_mul(0x5EED))));
        Permutation {
            keys,
            size,
            half_bits: bits.div_ceil(2).max(1),
        }
    }
    fn feistel(&self, x: u64) -> u64 {
        let h = self.half_bits;
        let mask = (1u64 << h) - 1;
        let (mut l, mut r) = ((x >> h) & mask, x & mask);
        for k in self.keys {
            (l, r) = (r, l ^ (mix(k ^ r) & mask));
        }
        (l << h) | r
    }
    fn apply(&self, i: u64) -> u64 {
        debug_assert!(i < self.size);
        let mut x = self.feistel(i);
        while x >= self.size {
            x = self.feistel(x);
        }
        x
    }
}

/// The ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID.
fn resident_id_check(body: &str) -> char {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let sum: u32 = body
        .bytes()
        .zip(WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    CHECK[(sum % 11) as usize] as char
}

/// Age bands (inclusive) with weights: diners skew towards 25–54.
const AGE_BANDS: [(i32, i32, u32); 6] = [
    (18, 24, 10),
    (25, 34, 28),
    (35, 44, 26),
    (45, 54, 18),
    (55, 64, 12),
    (65, 75, 6),
];
const SOURCES: [(&str, u32); 9] = [
    ("walk_in", 42),
    ("referral", 12),
    ("online", 16),
    ("campaign", 10),
    ("phone", 5),
    ("friend_coupon", 7),
    ("conference", 2),
    ("direct_mail", 2),
    ("other", 4),
];
const STAGES: [(&str, u32); 5] = [
    ("customer", 55),
    ("loyal", 25),
    ("lost", 8),
    ("prospect", 7),
    ("potential", 5),
];
const CHURN: [(&str, u32); 6] = [
    ("price", 25),
    ("inconvenience", 20),
    ("found_better", 20),
    ("service_failure", 15),
    ("moved", 15),
    ("other", 5),
];

/// The seeded source of everything. Draws happen in a fixed order: organizations, then
/// members by index.
struct Generator {
    rng: ChaCha8Rng,
    seed: u64,
    phones: Permutation,
    surnames: Weighted,
    ages: Weighted,
    areas: Weighted,
    spice: Weighted,
    seats: Weighted,
    allergies: Weighted,
    sources: Weighted,
    stages: Weighted,
    churn: Weighted,
    email_domains: Weighted,
    stores: Weighted,
    favourites: Weighted,
    /// Resident IDs issued: area index, birth day and sequence number packed in a u64.
    ids_used: HashSet<u64>,
    next_card: u64,
    orgs: Vec<OrgInfo>,
}

impl Generator {
    fn new(seed: u64) -> Generator {
        let phone_space = MOBILE_PREFIXES.len() as u64 * 100_000_000;
        let no_spice = 100 - SPICE.iter().map(|s| s.1).sum::<u32>();
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            seed,
            phones: Permutation::new(seed, phone_space),
            surnames: Weighted::of(SURNAMES),
            ages: Weighted::new(AGE_BANDS.iter().map(|b| b.2)),
            areas: Weighted::of(ID_AREAS),
            spice: Weighted::new(SPICE.iter().map(|s| s.1).chain([no_spice])),
            seats: Weighted::of(SEATS),
            allergies: Weighted::of(ALLERGIES),
            sources: Weighted::of(&SOURCES),
            stages: Weighted::of(&STAGES),
            churn: Weighted::of(&CHURN),
            email_domains: Weighted::of(EMAIL_DOMAINS),
            stores: Weighted::new(STORES.iter().map(|s| s.weight)),
            favourites: Weighted::new(MENU.iter().map(|d| d.popularity)),
            ids_used: HashSet::new(),
            next_card: FIRST_CARD,
            orgs: Vec::new(),
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.rng.random_range(0..list.len())]
    }

    /// A unique mainland mobile number for member `i`.
    fn phone(&self, i: u64) -> String {
        let n = self.phones.apply(i);
        let prefix = MOBILE_PREFIXES[(n / 100_000_000) as usize];
        format!("{prefix}{:08}", n % 100_000_000)
    }

    /// A number unique to member `i` among `0..MAX_MEMBERS`, that does not look sequential.
    fn scrambled(&self, i: u64) -> u64 {
        (i * 7_919 + self.seed % MAX_MEMBERS) % MAX_MEMBERS
    }

    fn given_name(&mut self, male: bool, birth_year: i32) -> String {
        let (old, young, chars) = if male {
            (OLD_MALE_NAMES, YOUNG_MALE_NAMES, MALE_CHARS)
        } else {
            (OLD_FEMALE_NAMES, YOUNG_FEMALE_NAMES, FEMALE_CHARS)
        };
        let era = self.chance(0.35);
        if era && birth_year < 1970 {
            return self.pick(old).to_string();
        }
        if era && birth_year >= 1995 {
            return self.pick(young).to_string();
        }
        let roll: f64 = self.rng.random();
        if roll < 0.28 {
            self.pick(chars).to_string()
        } else if !male && roll < 0.32 {
            self.pick(chars).repeat(2) // 叠字: 婷婷, 欢欢
        } else {
            let first = if self.chance(0.3) {
                *self.pick(NEUTRAL_CHARS)
            } else {
                *self.pick(chars)
            };
            let mut second = *self.pick(chars);
            while second == first {
                second = *self.pick(chars);
            }
            format!("{first}{second}")
        }
    }

    /// A valid resident ID number for this birthday and sex, never issued before in this
    /// run: on a clash the sequence number moves to the next free one of the same parity.
    fn resident_id(&mut self, birthday: NaiveDate, male: bool) -> String {
        const SEQS: u64 = 499;
        let mut area = self.areas.pick(&mut self.rng);
        let mut k = self.rng.random_range(0..SEQS);
        let day = birthday.num_days_from_ce() as u64;
        let mut tries = 0u64;
        while !self
            .ids_used
            .insert(((area as u64) << 40) | (day << 12) | (k << 1) | u64::from(male))
        {
            k = (k + 1) % SEQS;
            tries += 1;
            if tries.is_multiple_of(SEQS) {
                area = (area + 1) % ID_AREAS.len();
            }
        }
        // The 17th digit is odd for men and even for women.
        let seq = 2 * k + if male { 1 } else { 2 };
        let body = format!("{}{}{seq:03}", ID_AREAS[area].0, birthday.format("%Y%m%d"));
        let check = resident_id_check(&body);
        format!("{body}{check}")
    }

    fn address(&mut self) -> String {
        let district = *self.pick(DISTRICTS);
        let road = *self.pick(ROADS);
        let lane = self.rng.random_range(1..=1800);
        let building = self.rng.random_range(1..=40);
        let room = self.rng.random_range(1..=24) * 100 + self.rng.random_range(1..=4);
        format!("上海市{district}{road}{lane}弄{building}号{room}室")
    }

    fn landline(&mut self) -> String {
        let first = *self.pick(&[5, 6]);
        format!("021-{first}{:07}", self.rng.random_range(0..10_000_000))
    }

    /// The organizations (a handful: five, plus one per 50,000 members, at most 25) with
    /// 5–20 employees each, taken from the first members (at most a third of them).
    fn organizations(&mut self, members: u64) -> Vec<CustomerInput> {
        let count = if members == 0 {
            0
        } else {
            (5 + members / 50_000).min(25) as usize
        };
        let mut combos: Vec<usize> = (0..COMPANY_PREFIXES.len() * COMPANY_CORES.len()).collect();
        combos.shuffle(&mut self.rng);
        let budget = members / 3;
        let mut next = 0u64;
        let mut inputs = Vec::with_capacity(count);
        for &combo in &combos[..count] {
            let prefix = COMPANY_PREFIXES[combo / COMPANY_CORES.len()];
            let core = COMPANY_CORES[combo % COMPANY_CORES.len()];
            let &(kind, industry) = self.pick(COMPANY_KINDS);
            let name = format!("上海{prefix}{core}{kind}");
            let domain = format!("{}.com.cn", pinyin_full(&format!("{prefix}{core}")));
            let landline = self.landline();
            let store = self.stores.pick(&mut self.rng);
            let staff = self.rng.random_range(5..=20).min(budget - next);
            let employees = next..next + staff;
            next += staff;
            let credit = *self.pick(&["a", "a", "a", "b", "b", "c"]);
            let source = *self.pick(&["conference", "referral", "phone"]);
            let mut tags = vec!["企业客户".to_string(), "商务宴请".to_string()];
            if self.chance(0.4) {
                tags.push("月结".into());
            }
            let address = self.address();
            let notes = self.pick(ORG_CONTACT_NOTES).to_string();
            let stage = if self.chance(0.6) {
                "loyal"
            } else {
                "customer"
            };
            inputs.push(CustomerInput {
                name: Some(name.clone()),
                customer_type: Some("organization".into()),
                industry: Some(industry.into()),
                company: Some(name.clone()),
                work_phone: Some(landline.clone()),
                credit_rating: Some(credit.into()),
                email: Some(format!("admin@{domain}")),
                address: Some(address),
                acquisition_source: Some(source.into()),
                marketing_consent: Some(true),
                marketing_consent_source: Some("in_store".into()),
                seat_preference: Some("包间".into()),
                tags,
                notes: Some(notes),
                lifecycle_stage: Some(stage.into()),
                ..Default::default()
            });
            self.orgs.push(OrgInfo {
                name,
                industry,
                domain,
                landline,
                store,
                employees,
            });
        }
        inputs
    }

    /// Member `i`, generated while `written` members already exist.
    fn member(&mut self, i: u64, written: u64) -> MemberPlan {
        let organization = self.orgs.iter().position(|o| o.employees.contains(&i));
        let male = self.chance(0.47);
        let (low, high, _) = AGE_BANDS[self.ages.pick(&mut self.rng)];
        let birth_year = ANCHOR_YEAR - 1 - self.rng.random_range(low..=high);
        let days = if NaiveDate::from_ymd_opt(birth_year, 2, 29).is_some() {
            366
        } else {
            365
        };
        let birthday = NaiveDate::from_yo_opt(birth_year, self.rng.random_range(1..=days))
            .expect("a day of the year");
        let surname = SURNAMES[self.surnames.pick(&mut self.rng)].0;
        let name = format!("{surname}{}", self.given_name(male, birth_year));

        let mut input = CustomerInput {
            phone: Some(self.phone(i)),
            ..Default::default()
        };
        if self.chance(0.96) {
            input.gender = Some(if male { "male" } else { "female" }.into());
        }
        let has_birthday = self.chance(0.92);
        if has_birthday {
            input.birthday = Some(birthday.to_string());
        } else if self.chance(0.5) {
            // Some give only an age band, at the till ("三十多岁").
            input.age_band = Some(
                patron_domain::customer::AgeBand::from_birthday(
                    birthday,
                    NaiveDate::from_ymd_opt(ANCHOR_YEAR, 1, 1).expect("a date"),
                )
                .as_str()
                .into(),
            );
        }
        // About 20% overall; the ID's birth date is the birthday.
        if has_birthday && self.chance(0.2 / 0.92) {
            input.id_number = Some(self.resident_id(birthday, male));
        }
        let pinyin = pinyin_full(&name);
        if let Some(k) = organization {
            let title = *self.pick(TITLES);
            let org = &self.orgs[k];
            input.company = Some(org.name.clone());
            input.industry = Some(org.industry.into());
            input.title = Some(title.into());
            input.work_phone = Some(format!("{} 转 {}", org.landline, 800 + i % 200));
            input.email = Some(format!("{pinyin}.{}@{}", self.scrambled(i), org.domain));
        } else if self.chance(0.35) {
            input.email = Some(if self.chance(0.4) {
                format!(
                    "{}@qq.com",
                    10_000_000 + self.scrambled(i) * 2_897 + i % 2_897
                )
            } else {
                let domain = EMAIL_DOMAINS[self.email_domains.pick(&mut self.rng)].0;
                format!("{pinyin}{}@{domain}", self.scrambled(i))
            });
        }
        if self.chance(0.2) {
            input.address = Some(self.address());
        }

        // How they came, and who referred them.
        let mut source = SOURCES[self.sources.pick(&mut self.rng)].0;
        if organization.is_some() && self.chance(0.3) {
            source = "conference";
        }
        let mut referrer = None;
        if source == "referral" {
            if written > 0 {
                referrer = Some(self.rng.random_range(0..written));
            } else {
                source = "walk_in";
            }
        }
        input.acquisition_source = Some(source.into());
        let consent = self.chance(0.7);
        input.marketing_consent = Some(consent);
        if consent {
            input.marketing_consent_source = Some("in_store".into());
        }

        // Tastes, allergies, favourites, seat.
        let spice = self.spice.pick(&mut self.rng);
        if let Some((s, _)) = SPICE.get(spice) {
            input.tastes.push((*s).into());
        }
        for (t, percent) in TASTES {
            if self.rng.random_range(0..100) < *percent {
                input.tastes.push((*t).into());
            }
        }
        let vegetarian = self.chance(0.02);
        if vegetarian {
            input.tastes.push(VEGETARIAN.into());
        }
        if self.chance(0.04) {
            let n = if self.chance(0.8) { 1 } else { 2 };
            for _ in 0..n {
                let a = ALLERGIES[self.allergies.pick(&mut self.rng)].0.to_string();
                if !input.allergies.contains(&a) {
                    input.allergies.push(a);
                }
            }
        }
        let no_seafood = input
            .allergies
            .iter()
            .any(|a| SEAFOOD_ALLERGIES.contains(&a.as_str()));
        let no_nuts = input.allergies.iter().any(|a| a == "花生" || a == "坚果");
        if self.chance(0.55) {
            for _ in 0..self.rng.random_range(1..=3) {
                let dish = &MENU[self.favourites.pick(&mut self.rng)];
                let allowed = (!vegetarian || dish.veg)
                    && !(no_seafood
                        && (dish.category == SEAFOOD || dish.name.contains(SEAFOOD_CHARS)))
                    && !(no_nuts && dish.name.contains("宫保"))
                    && !TASTE_EXCLUDES.iter().any(|(taste, fragments)| {
                        input.tastes.iter().any(|t| t == taste)
                            && fragments.iter().any(|f| dish.name.contains(f))
                    });
                if allowed && !input.favourite_dishes.iter().any(|f| f == dish.name) {
                    input.favourite_dishes.push(dish.name.into());
                }
            }
        }
        if self.chance(0.4) {
            input.seat_preference = Some(SEATS[self.seats.pick(&mut self.rng)].0.into());
        }

        // Stage, tags, notes.
        let stage = STAGES[self.stages.pick(&mut self.rng)].0;
        input.lifecycle_stage = Some(stage.into());
        if stage == "lost" {
            let reason = self.churn.pick(&mut self.rng);
            input.churn_reason = Some(CHURN[reason].0.into());
            if self.chance(0.5) {
                input.churn_note = Some(self.pick(CHURN_NOTES[reason].1).to_string());
            }
        }
        let vip = match stage {
            "loyal" => 0.25,
            "customer" => 0.03,
            _ => 0.0,
        };
        let business = if organization.is_some() { 0.6 } else { 0.08 };
        for (tag, p) in [
            ("VIP", vip),
            ("商务宴请", business),
            ("家庭聚餐", 0.22),
            ("生日宴", 0.06),
            ("外卖常客", 0.1),
            ("团建", 0.03),
            ("婚宴", 0.015),
        ] {
            if p > 0.0 && self.chance(p) {
                input.tags.push(tag.into());
            }
        }
        if stage == "loyal" && self.chance(0.3) {
            input.tags.push("老顾客".into());
        }
        if vegetarian {
            input.tags.push(VEGETARIAN.into());
        }
        if self.chance(0.04) {
            input.notes = Some(self.pick(NOTES).to_string());
        }
        input.name = Some(name);

        // Home store and card.
        let store = match organization {
            Some(k) => self.orgs[k].store,
            None => self.stores.pick(&mut self.rng),
        };
        let card_chance = match stage {
            "loyal" => 0.9,
            "customer" => 0.6,
            "lost" => 0.4,
            "prospect" => 0.1,
            _ => 0.0,
        };
        let card = (card_chance > 0.0 && self.chance(card_chance)).then(|| {
            let number = with_check_digit(&format!("{CARD_PREFIX}{:011}", self.next_card));
            self.next_card += 1;
            let medium = if self.chance(0.25) {
                CardMedium::Physical
            } else {
                CardMedium::Electronic
            };
            let status = if stage == "lost" && self.chance(0.3) {
                CardStatus::Closed
            } else {
                CardStatus::Active
            };
            CardPlan {
                number,
                medium,
                status,
            }
        });

        MemberPlan {
            input,
            store,
            organization,
            referrer,
            card,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;
    use patron_domain::customer::{CustomerType, Gender, LifecycleStage};
    use patron_domain::id_document::{IdDocument, IdDocumentKind};
    use patron_store::Storage;
    use patron_store::sqlite::SqliteStorage;
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    const KEY: &[u8] = b"demo-test-key";

    async fn app_in(dir: &tempfile::TempDir) -> App {
        let path = dir.path().join("demo.db");
        let storage = SqliteStorage::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open");
        storage.migrate().await.expect("migrate");
        App::new(Arc::new(storage), KEY.to_vec())
    }

    async fn all_customers(app: &App, tenant_code: &str) -> Vec<patron_domain::customer::Customer> {
        let tenant = app
            .storage
            .tenant_by_code(tenant_code)
            .await
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = app
                .storage
                .customers_after(tenant.id, after, 1000)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            out.extend(page);
        }
        out
    }

    /// Members only: the tests about people skip the (slower) history.
    fn opts(members: u64, seed: u64) -> DemoOptions {
        DemoOptions {
            members,
            seed,
            history: false,
        }
    }

    #[test]
    fn generated_rows_validate_and_are_unique() {
        let members = 60_000;
        let ctx = ValidationContext {
            id_hash_key: KEY,
            today: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        };
        let mut g = Generator::new(99);
        let orgs = g.organizations(members);
        assert!(!orgs.is_empty());
        for o in &orgs {
            let p = o.validate(ctx, None).expect("organization validates");
            assert_eq!(p.customer_type, CustomerType::Organization);
        }
        let fake_org_ids: Vec<String> = orgs.iter().map(|_| new_uuid().to_string()).collect();
        let (mut phones, mut ids, mut cards, mut emails) = (
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
            HashSet::new(),
        );
        let (mut with_id, mut consent, mut lost, mut referred) = (0, 0, 0, 0);
        let mut surnames: HashMap<char, u64> = HashMap::new();
        for i in 0..members {
            let batch_start = i / 5_000 * 5_000;
            let plan = g.member(i, batch_start);
            let mut input = plan.input.clone();
            input.organization_id = plan.organization.map(|k| fake_org_ids[k].clone());
            if let Some(r) = plan.referrer {
                assert!(r < batch_start, "referrals point to written members");
                input.referred_by = Some(new_uuid().to_string());
                referred += 1;
            }
            let p = input
                .validate(ctx, None)
                .unwrap_or_else(|e| panic!("member {i} {input:?}: {e}"));
            assert!(phones.insert(p.phone.clone().expect("every member has a phone")));
            for dish in &p.favourite_dishes {
                assert!(MENU.iter().any(|d| d.name == dish), "{dish}");
                for (taste, fragments) in TASTE_EXCLUDES {
                    let clash = p.tastes.iter().any(|t| t == taste)
                        && fragments.iter().any(|f| dish.contains(f));
                    assert!(!clash, "{} favours {dish} but {taste}", p.name);
                }
                if p.allergies.iter().any(|a| a == "海鲜") {
                    assert!(!dish.contains(SEAFOOD_CHARS), "{dish}");
                }
            }
            if let Some(e) = &p.email {
                assert!(emails.insert(e.clone()), "duplicate email {e}");
            }
            if let Some(number) = &plan.input.id_number {
                with_id += 1;
                assert!(ids.insert(number.clone()), "duplicate ID {number}");
                assert_eq!(
                    &number[6..14],
                    p.birthday.unwrap().format("%Y%m%d").to_string()
                );
                let odd = (number.as_bytes()[16] - b'0') % 2 == 1;
                if p.gender != Gender::Unknown {
                    assert_eq!(odd, p.gender == Gender::Male, "{number}");
                }
                IdDocument::parse(IdDocumentKind::ResidentId, number, "id").unwrap();
                assert!(p.id_document.is_some());
            }
            if let Some(c) = &plan.card {
                assert!(patron_domain::card_number::parse(&c.number, "card").is_ok());
                assert!(cards.insert(c.number.clone()));
            }
            consent += u64::from(p.marketing_consent);
            if p.lifecycle_stage == LifecycleStage::Lost {
                lost += 1;
                assert!(p.churn_reason.is_some());
            }
            let age = 2026 - p.birthday.map_or(1990, |b| b.year());
            assert!((18..=77).contains(&age), "age {age}");
            *surnames.entry(p.name.chars().next().unwrap()).or_default() += 1;
        }
        let share = |n: u64| n as f64 / members as f64;
        assert!((0.17..0.23).contains(&share(with_id)), "{with_id}");
        assert!((0.66..0.74).contains(&share(consent)), "{consent}");
        assert!((0.55..0.65).contains(&share(cards.len() as u64)));
        assert!((0.05..0.11).contains(&share(lost)));
        assert!(referred > members / 20);
        assert!(surnames[&'王'] > surnames[&'周'] * 2);
    }

    #[test]
    fn permutation_is_a_bijection() {
        for size in [1, 2, 3, 1_000, 70_001] {
            let p = Permutation::new(5, size);
            let mut seen = vec![false; size as usize];
            for i in 0..size {
                let x = p.apply(i) as usize;
                assert!(!seen[x]);
                seen[x] = true;
            }
        }
        let g = Generator::new(5);
        let phones: HashSet<String> = (0..100_000).map(|i| g.phone(i)).collect();
        assert_eq!(phones.len(), 100_000);
    }

    #[tokio::test]
    async fn generates_a_chain_with_members_cards_and_organizations() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(&dir).await;
        // Callers (CLI, HTTP) may spawn it.
        fn assert_send<T: Send>(_: &T) {}
        assert_send(&app.generate_demo(opts(1, 1), &|_, _, _| {}));
        let calls = AtomicU64::new(0);
        let last = AtomicU64::new(0);
        let summary = app
            .generate_demo(opts(500, 2026), &|phase, done, total| {
                assert_eq!(phase, DemoPhase::Members);
                assert_eq!(total, 500);
                assert!(done >= last.load(Ordering::SeqCst));
                last.store(done, Ordering::SeqCst);
                calls.fetch_add(1, Ordering::SeqCst);
            })
            .await
            .unwrap();
        assert_eq!(last.load(Ordering::SeqCst), 500);
        assert!(calls.load(Ordering::SeqCst) > 2);
        assert_eq!(summary.members, 500);
        assert_eq!(summary.stores, 3);
        assert_eq!(summary.menu_items, MENU.len());
        assert!((70..=95).contains(&summary.menu_items));
        assert!(summary.organizations >= 3);
        assert!((200..=400).contains(&summary.cards), "{}", summary.cards);
        assert_eq!(summary.checkouts, 0);

        let login = app
            .login(
                "demo",
                &summary.owner_username,
                &summary.owner_password,
                None,
            )
            .await
            .unwrap();
        let tenant = login.tenant_id;
        assert_eq!(app.storage.list_stores(tenant).await.unwrap().len(), 3);
        let (cats, items) = app.storage.menu(tenant).await.unwrap();
        assert!(cats.len() >= 8);
        assert_eq!(items.len(), MENU.len());
        assert!(items.iter().any(|i| !i.joins_discounts));

        let customers = all_customers(&app, "demo").await;
        assert_eq!(customers.len() as u64, 500 + summary.organizations);
        let ctx = app.validation_context();
        let mut phones = HashSet::new();
        let mut id_hashes = HashSet::new();
        let mut org_members: HashMap<CustomerId, u64> = HashMap::new();
        let mut home_stores = HashSet::new();
        let mut cards_seen = 0;
        let mut referrals = 0;
        for c in &customers {
            // The stored profile still validates (and round-trips).
            let again = c
                .profile
                .to_input()
                .validate(ctx, c.profile.id_document.clone())
                .unwrap();
            assert_eq!(again, c.profile);
            home_stores.insert(c.home_store_id.unwrap());
            if c.profile.customer_type == CustomerType::Organization {
                org_members.entry(c.id).or_default();
                continue;
            }
            assert!(phones.insert(c.profile.phone.clone().unwrap()));
            if let Some(d) = &c.profile.id_document {
                assert!(id_hashes.insert(d.hash.clone()));
                assert!(d.masked.contains('*'));
            }
            if let Some(o) = c.profile.organization_id {
                *org_members.entry(o).or_default() += 1;
            }
            referrals += u64::from(c.profile.referred_by.is_some());
            for card in app.storage.cards_of_customer(tenant, c.id).await.unwrap() {
                let holder = app
                    .storage
                    .customer_by_card_number(tenant, &card.number)
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(holder.id, c.id);
                assert!(card.number.starts_with(CARD_PREFIX));
                cards_seen += 1;
            }
        }
        assert_eq!(cards_seen, summary.cards);
        assert_eq!(home_stores.len(), 3);
        assert!(id_hashes.len() >= 60, "{}", id_hashes.len());
        assert!(referrals > 0);
        assert_eq!(org_members.len() as u64, summary.organizations);
        for (org, n) in &org_members {
            assert!((5..=20).contains(n), "organization {org} has {n} members");
        }
        // The till look-up finds a member by ID number through the protected hash.
        let actor = app.authenticate(&login.token).await.unwrap();
        let with_id = customers
            .iter()
            .find(|c| c.profile.id_document.is_some())
            .unwrap();
        let found = app
            .lookup_customers(&actor, with_id.profile.phone.as_ref().unwrap().as_str(), 5)
            .await
            .unwrap();
        assert_eq!(found[0].id, with_id.id);

        // A second run on the same database is refused.
        let again = app.generate_demo(opts(10, 2026), &|_, _, _| {}).await;
        assert!(
            matches!(
                again,
                Err(AppError::Conflict {
                    code: "tenant_exists",
                    ..
                })
            ),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn same_seed_gives_same_people() {
        async fn people(seed: u64) -> Vec<(String, String, Option<String>)> {
            let dir = tempfile::tempdir().unwrap();
            let app = app_in(&dir).await;
            app.generate_demo(opts(300, seed), &|_, _, _| {})
                .await
                .unwrap();
            let mut out: Vec<_> = all_customers(&app, "demo")
                .await
                .into_iter()
                .map(|c| {
                    (
                        c.profile.name,
                        c.profile.phone.map(|p| p.to_string()).unwrap_or_default(),
                        c.profile.id_document.map(|d| d.masked),
                    )
                })
                .collect();
            out.sort();
            out
        }
        let a = people(42).await;
        assert_eq!(a.len(), 300 + 5);
        assert_eq!(a, people(42).await);
        assert_ne!(a, people(43).await);
    }

    #[tokio::test]
    async fn two_years_of_visits_through_the_till() {
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(&dir).await;
        let started = now();
        let (bills, last) = (AtomicU64::new(0), AtomicU64::new(0));
        let summary = app
            .generate_demo(
                DemoOptions {
                    members: 120,
                    seed: 7,
                    history: true,
                },
                &|phase, done, total| {
                    if phase == DemoPhase::Checkouts {
                        assert!(done >= last.load(Ordering::SeqCst) && done <= total);
                        last.store(done, Ordering::SeqCst);
                        bills.store(total, Ordering::SeqCst);
                    }
                },
            )
            .await
            .unwrap();
        assert!(summary.checkouts >= 300, "{summary:?}");
        assert!(bills.load(Ordering::SeqCst) > 0);
        assert!(summary.reversals >= 1, "{summary:?}");
        assert!(summary.top_ups > 0, "{summary:?}");
        let tenant = app.storage.tenant_by_code("demo").await.unwrap().unwrap();
        assert!(tenant.created_at < started - chrono::Duration::days(700));

        // The ledger in posting order: dated in order, never after generation started.
        let s = &app.storage;
        let (mut after, mut previous, mut txn_ids) = (0, tenant.created_at, Vec::new());
        loop {
            let page = s.entries_after(tenant.id, after, 5_000).await.unwrap();
            let Some(e) = page.last() else { break };
            after = e.seq;
            for e in &page {
                assert!(
                    e.created_at >= previous,
                    "entry {} goes back in time",
                    e.seq
                );
                previous = e.created_at;
                if txn_ids.last() != Some(&e.txn_id) {
                    txn_ids.push(e.txn_id);
                }
            }
        }
        assert!(previous <= started);
        let mut checkouts = Vec::new();
        for chunk in txn_ids.chunks(500) {
            for t in s.txns(tenant.id, chunk).await.unwrap() {
                if t.kind == "checkout" {
                    checkouts.push(s.checkout(tenant.id, t.id).await.unwrap().unwrap());
                }
            }
        }
        assert_eq!(checkouts.len() as u64, summary.checkouts);

        // Spread over two years, all three stores, lunch and dinner, parties of 1–10.
        let days: HashSet<NaiveDate> = checkouts.iter().map(|c| c.business_date).collect();
        let (first, last_day) = (days.iter().min().unwrap(), days.iter().max().unwrap());
        assert!(
            (*last_day - *first).num_days() >= 650,
            "{first}..{last_day}"
        );
        let months: HashSet<(i32, u32)> = days.iter().map(|d| (d.year(), d.month())).collect();
        assert!(months.len() >= 22, "{} months", months.len());
        let stores: HashSet<StoreId> = checkouts.iter().map(|c| c.store_id).collect();
        assert_eq!(stores.len(), 3);
        let settings = app.settings_of(tenant.id).await.unwrap();
        let hours: HashSet<u32> = checkouts
            .iter()
            .map(|c| settings.local(c.created_at).hour())
            .collect();
        // Lunch 11:30–13:30, dinner 17:30–20:30; a bill rung again after its reversal
        // comes up to 90 minutes later (a lunch's at 14:xx on some calendars: the days,
        // and so the random draws, depend on the day the test runs).
        assert!(
            hours
                .iter()
                .all(|h| (11..=15).contains(h) || (17..=22).contains(h)),
            "{hours:?}"
        );
        assert!(hours.contains(&12) && hours.contains(&18), "{hours:?}");
        let parties: Vec<i32> = checkouts.iter().filter_map(|c| c.party_size).collect();
        assert!(parties.iter().all(|p| (1..=10).contains(p)));
        let small = parties.iter().filter(|p| (2..=4).contains(*p)).count();
        assert!(small * 2 > parties.len(), "mostly 2–4");

        // Reversed the same day, paid in several ways, coupons used, members and walk-ins.
        let reversed = checkouts.iter().filter(|c| c.status == "reversed").count();
        assert_eq!(reversed as u64, summary.reversals);
        let paid = |m: &str| {
            checkouts
                .iter()
                .filter(|c| c.tenders.to_string().contains(&format!("\"{m}\"")))
                .count()
        };
        assert!(paid("stored_value") > 0 && paid("wechat") > 0 && paid("alipay") > 0);
        let with_coupon = checkouts
            .iter()
            .filter(|c| {
                c.breakdown["coupons_applied"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty())
            })
            .count();
        assert!(with_coupon > 0);
        assert!(checkouts.iter().any(|c| c.customer_id.is_none()));

        // Nobody dines before joining; members joined over the two years.
        let customers: HashMap<CustomerId, patron_domain::customer::Customer> =
            all_customers(&app, "demo")
                .await
                .into_iter()
                .map(|c| (c.id, c))
                .collect();
        for c in &checkouts {
            if let Some(id) = c.customer_id {
                assert!(c.created_at >= customers[&id].created_at, "{}", c.number);
            }
        }
        let recent = customers
            .values()
            .filter(|c| c.created_at > started - chrono::Duration::days(180))
            .count();
        assert!(recent > 0 && recent < customers.len() / 2, "{recent}");
        assert!(
            customers
                .values()
                .any(|c| matches!(c.level.as_deref(), Some("silver" | "gold" | "diamond")))
        );

        // Balances, chains and points lots all check out.
        let report = app.verify_ledger().await.unwrap();
        assert!(report.is_clean(), "{:?}", report.violations);
    }

    /// Timing for the largest run, members only (`DEMO_MEMBERS` overrides the count). By hand:
    /// `cargo test --release -p patron-app demo::tests::one_million -- --ignored --nocapture`
    #[tokio::test]
    #[ignore]
    async fn one_million_members() {
        let members = std::env::var("DEMO_MEMBERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(MAX_MEMBERS);
        let dir = tempfile::tempdir().unwrap();
        let app = app_in(&dir).await;
        let started = std::time::Instant::now();
        let reported = AtomicU64::new(0);
        let summary = app
            .generate_demo(opts(members, 2026), &|_, done, total| {
                if done / 100_000 > reported.load(Ordering::SeqCst) || done == total {
                    reported.store(done / 100_000, Ordering::SeqCst);
                    eprintln!("{done}/{total} after {:.1?}", started.elapsed());
                }
            })
            .await
            .unwrap();
        eprintln!("{summary:?} in {:.1?}", started.elapsed());
        let tenant = app.storage.tenant_by_code("demo").await.unwrap().unwrap();
        assert_eq!(
            app.storage.count_customers(tenant.id).await.unwrap() as u64,
            members + summary.organizations
        );
    }
}
