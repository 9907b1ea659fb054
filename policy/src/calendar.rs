//! The State Council's holiday calendar (国务院办公厅关于20XX年部分节假日安排的通知):
//! which days are working days, as the notices count "working days" (工作日).
//!
//! A working day is a Monday to Friday that is not a public holiday, or a
//! Saturday or Sunday the State Council makes a working day (调休上班). The
//! calendar is published like a policy (`program = "holiday_calendar"`), so a
//! replay knows which calendar was in force when a notice's end was computed.
//! A year the calendar does not list cannot be counted: the State Council
//! publishes each year's days in November of the year before.

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::file_error::FieldPath;

/// A date that reads from a TOML date or a `YYYY-MM-DD` string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(#[serde(with = "crate::dates")] pub NaiveDate);

/// Parameters of a holiday-calendar policy. File keys:
///
/// ```toml
/// [[year]]
/// year = 2024
/// document = "国办发明电〔2023〕7号"
/// holidays = [{ name = "国庆节", from = 2024-10-01, until = 2024-10-07 }]
/// working_weekend_days = [2024-09-29, 2024-10-12]   # 调休上班
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarRules {
    pub year: Vec<CalendarYear>,
}

/// One year's notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    pub year: i32,
    /// The State Council notice that sets the year's days.
    pub document: String,
    /// Days off (放假), each range inclusive.
    pub holidays: Vec<Holiday>,
    /// Saturdays and Sundays that are working days (调休上班).
    #[serde(default)]
    pub working_weekend_days: Vec<Day>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub name: String,
    pub from: Day,
    pub until: Day,
}

/// A date the calendar cannot say anything about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotCovered {
    pub year: i32,
}

impl CalendarRules {
    pub(crate) fn problems(&self) -> Vec<(FieldPath, String)> {
        let mut out = Vec::new();
        for (i, y) in self.year.iter().enumerate() {
            let at = |f: &str| FieldPath::root().key("year").index(i).key(f);
            if self.year[..i].iter().any(|o| o.year == y.year) {
                out.push((at("year"), format!("{} is listed twice", y.year)));
            }
            if y.document.trim().is_empty() {
                out.push((at("document"), "must name the State Council notice".into()));
            }
            for h in &y.holidays {
                if h.until < h.from || h.from.0.year() < y.year - 1 || h.until.0.year() > y.year {
                    out.push((
                        at("holidays"),
                        format!(
                            "{} ({} to {}) is not a range within {}",
                            h.name, h.from.0, h.until.0, y.year
                        ),
                    ));
                }
            }
            for d in &y.working_weekend_days {
                if !is_weekend(d.0) || d.0.year() != y.year {
                    out.push((
                        at("working_weekend_days"),
                        format!("{} is not a Saturday or Sunday of {}", d.0, y.year),
                    ));
                }
            }
        }
        out
    }

    fn year_of(&self, date: NaiveDate) -> Option<&CalendarYear> {
        self.year.iter().find(|y| y.year == date.year())
    }

    /// Whether `date` is a working day; `Err` if the calendar does not list its year.
    /// A holiday range may start in the previous year (元旦 2023 began on 2022-12-31):
    /// every listed year's ranges are consulted.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, NotCovered> {
        let year = self.year_of(date).ok_or(NotCovered { year: date.year() })?;
        if year.working_weekend_days.iter().any(|d| d.0 == date) {
            return Ok(true);
        }
        let holiday = self
            .year
            .iter()
            .flat_map(|y| &y.holidays)
            .any(|h| h.from.0 <= date && date <= h.until.0);
        Ok(!holiday && !is_weekend(date))
    }

    /// The last day of a period of `working_days` working days starting on `starts_on`
    /// (which counts if it is a working day itself).
    pub fn ends_on(
        &self,
        starts_on: NaiveDate,
        working_days: u32,
    ) -> Result<NaiveDate, NotCovered> {
        let mut day = starts_on;
        let mut counted = 0;
        loop {
            if self.is_working_day(day)? {
                counted += 1;
                if counted >= working_days {
                    return Ok(day);
                }
            }
            day += Duration::days(1);
        }
    }

    /// The years listed.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.year.iter().map(|y| y.year)
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Policy, Rules};

    const SHIPPED: &str = include_str!("../../policies/state-council-holidays.toml");

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rules() -> CalendarRules {
        match Policy::from_toml(SHIPPED).unwrap().rules {
            Rules::HolidayCalendar(r) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_shipped_calendar_covers_2021_to_2026() {
        assert_eq!(rules().years().collect::<Vec<_>>(), vec![2021, 2022, 2023, 2024, 2025, 2026]);
    }

    /// 国办发明电〔2023〕7号 item 七: 10月1日至7日放假调休，共7天。9月29日（星期日）、
    /// 10月12日（星期六）上班.
    #[test]
    fn a_notice_opened_on_2024_09_30_ends_after_the_national_day_week() {
        let r = rules();
        assert!(r.is_working_day(d("2024-09-29")).unwrap(), "Sunday, make-up working day");
        assert!(!r.is_working_day(d("2024-10-01")).unwrap());
        assert!(!r.is_working_day(d("2024-10-07")).unwrap());
        assert!(r.is_working_day(d("2024-10-12")).unwrap(), "Saturday, make-up working day");
        // 9-30 is day 1; 10-01..07 are off; 10-08, 09, 10, 11 are days 2 to 5.
        assert_eq!(r.ends_on(d("2024-09-30"), 5).unwrap(), d("2024-10-11"));
        // From 10-09: 09, 10, 11, the make-up Saturday 12, then Monday 14.
        assert_eq!(r.ends_on(d("2024-10-09"), 5).unwrap(), d("2024-10-14"));
        // Opened on the make-up Sunday 9-29: 29, 30, then 10-08, 09, 10.
        assert_eq!(r.ends_on(d("2024-09-29"), 5).unwrap(), d("2024-10-10"));
    }

    #[test]
    fn ordinary_weeks_and_other_holidays() {
        let r = rules();
        // An ordinary week: Monday to Friday.
        assert_eq!(r.ends_on(d("2025-06-09"), 5).unwrap(), d("2025-06-13"));
        // 2025 端午节 5月31日至6月2日: Monday 6-02 is off, so a notice "starting" on it runs
        // 6-03 to 6-09 (weekends alone would have ended it on 6-06).
        assert_eq!(r.ends_on(d("2025-06-02"), 5).unwrap(), d("2025-06-09"));
        assert_eq!(r.ends_on(d("2025-05-30"), 5).unwrap(), d("2025-06-06"));
        // 2025 春节 1月28日至2月4日, 1月26日（星期日）、2月8日（星期六）上班.
        // 1-24 (1), the make-up Sunday 1-26 (2), 1-27 (3), then 2-05 (4) and 2-06 (5).
        assert_eq!(r.ends_on(d("2025-01-24"), 5).unwrap(), d("2025-02-06"));
        assert_eq!(r.ends_on(d("2025-02-05"), 4).unwrap(), d("2025-02-08"));
        // 2023 元旦 2022年12月31日至2023年1月2日: Monday 2023-01-02 is off.
        assert!(!r.is_working_day(d("2023-01-02")).unwrap());
        // 2026 元旦 1月1日至3日, 1月4日（周日）上班.
        assert!(!r.is_working_day(d("2026-01-02")).unwrap());
        assert!(r.is_working_day(d("2026-01-04")).unwrap());
        assert_eq!(r.ends_on(d("2027-01-04"), 5), Err(NotCovered { year: 2027 }));
        assert_eq!(r.ends_on(d("2026-12-28"), 5), Err(NotCovered { year: 2027 }));
    }

    #[test]
    fn a_make_up_day_on_a_weekday_is_refused_in_the_file() {
        let text = SHIPPED.replacen("2024-10-12", "2024-10-11", 1);
        assert_ne!(text, SHIPPED);
        let e = Policy::from_toml(&text).unwrap_err();
        assert!(e.field.ends_with("working_weekend_days"), "{e}");
    }
}
