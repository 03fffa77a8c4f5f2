//! Integers that say what they hold: a tenant id is not a customer id nor an amount in fen,
//! though all three are stored as one `BIGINT`/`INTEGER`. `int_newtype!` makes such a type:
//! stored, bound, read and written in JSON as the bare integer, shown as it.

/// Declares `pub struct $name(i64)` stored and read as the integer: `new`/`get`, `Display`,
/// serde as the bare number, sqlx `Type`/`Decode` on every backend (rows read into it), and
/// `From` for the store's bound values (`Value`, `Arg`), which is how every statement binds.
#[macro_export]
macro_rules! int_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub struct $name(i64);

        impl $name {
            /// The value the integer names.
            pub const fn new(v: i64) -> Self {
                Self(v)
            }

            /// The integer as it is stored.
            pub const fn get(self) -> i64 {
                self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                ::std::fmt::Display::fmt(&self.0, f)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = ::std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map(Self)
            }
        }

        impl $crate::__private::serde::Serialize for $name {
            fn serialize<S: $crate::__private::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.0)
            }
        }

        impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
            fn deserialize<D: $crate::__private::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <i64 as $crate::__private::serde::Deserialize>::deserialize(d).map(Self)
            }
        }

        impl<DB: $crate::__private::sqlx::Database> $crate::__private::sqlx::Type<DB> for $name
        where
            i64: $crate::__private::sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <i64 as $crate::__private::sqlx::Type<DB>>::type_info()
            }

            fn compatible(ty: &DB::TypeInfo) -> bool {
                <i64 as $crate::__private::sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: $crate::__private::sqlx::Database> $crate::__private::sqlx::Decode<'r, DB> for $name
        where
            i64: $crate::__private::sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as $crate::__private::sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, $crate::__private::sqlx::error::BoxDynError> {
                <i64 as $crate::__private::sqlx::Decode<'r, DB>>::decode(value).map(Self)
            }
        }

        impl From<$name> for $crate::db::Value {
            fn from(v: $name) -> Self {
                $crate::db::Value::from(v.0)
            }
        }

        impl From<Option<$name>> for $crate::db::Value {
            fn from(v: Option<$name>) -> Self {
                $crate::db::Value::from(v.map(|v| v.0))
            }
        }

        impl From<$name> for $crate::rows::Arg<'_> {
            fn from(v: $name) -> Self {
                $crate::rows::Arg::Int(Some(v.0))
            }
        }

        impl From<Option<$name>> for $crate::rows::Arg<'_> {
            fn from(v: Option<$name>) -> Self {
                $crate::rows::Arg::Int(v.map(|v| v.0))
            }
        }
    };
}

int_newtype!(
    /// A brand: every row is scoped by one, and every query names it.
    TenantId
);

int_newtype!(
    /// A customer record of one brand: the kept one after OneID merges, or a record merged
    /// away that reports read as its survivor.
    CustomerId
);

int_newtype!(
    /// Money in fen (分, a hundredth of a yuan): every price, amount, refund, discount and cost.
    Fen
);

impl Fen {
    pub const ZERO: Fen = Fen(0);

    /// The sum, or `None` where it would overflow.
    pub fn checked_add(self, o: Fen) -> Option<Fen> {
        self.0.checked_add(o.0).map(Fen)
    }

    /// A price times a quantity, or `None` where it would overflow.
    pub fn checked_mul(self, n: i64) -> Option<Fen> {
        self.0.checked_mul(n).map(Fen)
    }
}

// Money adds, subtracts, sums and scales by a count; it never multiplies by money.
impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, o: Fen) -> Fen {
        Fen(self.0 + o.0)
    }
}

impl std::ops::Sub for Fen {
    type Output = Fen;
    fn sub(self, o: Fen) -> Fen {
        Fen(self.0 - o.0)
    }
}

impl std::ops::AddAssign for Fen {
    fn add_assign(&mut self, o: Fen) {
        self.0 += o.0;
    }
}

impl std::ops::SubAssign for Fen {
    fn sub_assign(&mut self, o: Fen) {
        self.0 -= o.0;
    }
}

impl std::ops::Neg for Fen {
    type Output = Fen;
    fn neg(self) -> Fen {
        Fen(-self.0)
    }
}

impl std::ops::Mul<i64> for Fen {
    type Output = Fen;
    fn mul(self, n: i64) -> Fen {
        Fen(self.0 * n)
    }
}

/// Shares of an amount (an average over orders): rounded toward zero, as integer division is.
impl std::ops::Div<i64> for Fen {
    type Output = Fen;
    fn div(self, n: i64) -> Fen {
        Fen(self.0 / n)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(it: I) -> Fen {
        Fen(it.map(|f| f.0).sum())
    }
}

impl<'a> std::iter::Sum<&'a Fen> for Fen {
    fn sum<I: Iterator<Item = &'a Fen>>(it: I) -> Fen {
        Fen(it.map(|f| f.0).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::TenantId;

    #[test]
    fn a_tenant_id_reads_and_writes_as_its_number() {
        let t = TenantId::new(42);
        assert_eq!(t.to_string(), "42");
        assert_eq!("42".parse::<TenantId>().ok(), Some(t));
        assert_eq!(serde_json::to_string(&t).ok().as_deref(), Some("42"));
        assert_eq!(serde_json::from_str::<TenantId>("42").ok(), Some(t));
        assert!(serde_json::from_str::<TenantId>("\"42\"").is_err());
    }

    #[test]
    fn money_adds_and_scales_as_its_fen() {
        use super::Fen;
        let price = Fen::new(1_299);
        assert_eq!(price * 3 - Fen::new(97), Fen::new(3_800));
        assert_eq!([price, price].iter().sum::<Fen>(), Fen::new(2_598));
        assert_eq!(Fen::new(1_000) / 3, Fen::new(333));
        assert_eq!(-price, Fen::new(-1_299));
    }
}
