//! GitLab's required upgrade stops (`cloud-init/upgrade-path.txt`, with its
//! source and date) and the path an upgrade takes through them. The plan
//! shows the path; the bootstrap gets the same list and walks it on the box.

const STOPS_FILE: &str = include_str!("../cloud-init/upgrade-path.txt");

/// A GitLab release, `major.minor.patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    major: u32,
    minor: u32,
    patch: u32,
}

impl Version {
    pub fn parse(text: &str) -> Option<Version> {
        let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
        let version = Version {
            major: parts.next()??,
            minor: parts.next()??,
            patch: parts.next()??,
        };
        parts.next().is_none().then_some(version)
    }

    /// The release series (`major.minor`) a stop stands for.
    fn series(self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Every stop, oldest first.
pub fn stops() -> Vec<Version> {
    STOPS_FILE
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| Version::parse(l).expect("cloud-init/upgrade-path.txt holds versions"))
        .collect()
}

/// The list as the bootstrap gets it: the versions, space separated.
pub fn stops_value() -> String {
    stops()
        .iter()
        .map(Version::to_string)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The stops an upgrade from `from` to `to` installs before `to`: those
/// whose series lies strictly between the two (a box already on a stop's
/// series has reached it; a target in a stop's series is that stop's
/// install). The same rule as `upgrade_steps` in cloud-init/bootstrap.sh.
pub fn through(from: Version, to: Version) -> Vec<Version> {
    stops()
        .into_iter()
        .filter(|stop| from.series() < stop.series() && stop.series() < to.series())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        Version::parse(text).unwrap()
    }

    #[test]
    fn versions_parse_and_order_numerically() {
        assert!(v("17.11.7") > v("17.3.7"));
        assert_eq!(v("18.5.1").to_string(), "18.5.1");
        for bad in ["18.5", "18.5.1.2", "18.x.1", "", "latest"] {
            assert_eq!(Version::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_stop_list_is_sorted_and_one_per_series() {
        let stops = stops();
        assert!(stops.len() > 10);
        assert!(stops.windows(2).all(|w| w[0].series() < w[1].series()));
        assert!(stops_value().contains("17.3.7 17.5.5"));
    }

    #[test]
    fn the_path_goes_through_every_stop_between() {
        let path: Vec<String> = through(v("17.0.1"), v("18.5.1"))
            .iter()
            .map(Version::to_string)
            .collect();
        assert_eq!(
            path,
            ["17.1.8", "17.3.7", "17.5.5", "17.8.7", "17.11.7", "18.2.8"]
        );
        // On a stop's series already: that stop is reached.
        assert_eq!(through(v("17.3.2"), v("17.6.0")), vec![v("17.5.5")]);
        // Within one series, or to the next stop itself: no stop between.
        assert!(through(v("17.5.1"), v("17.5.5")).is_empty());
        assert!(through(v("17.4.0"), v("17.5.9")).is_empty());
        assert!(through(v("18.6.0"), v("18.5.1")).is_empty());
    }
}
