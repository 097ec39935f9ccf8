//! A router builder that remembers the (method, path) pairs it serves, so the
//! HTTP contract in `openapi/openapi.yaml` can be checked against the code
//! without starting the application or building its state.

use std::collections::BTreeMap;

use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{self, MethodRouter};
use axum::{Extension, Router};

use crate::auth::Permission;

/// The permission a route requires, put in the request's extensions by the
/// route itself; the `Caller` extractor enforces it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequiredPermission(pub Permission);

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: health, CA certificates, status services.
    Public,
    /// An authenticated principal holding the permission.
    Requires(Permission),
}

/// The methods served on one path, with who may call each, and their router.
type PathRoutes<S> = (Vec<(Method, Access)>, MethodRouter<S>);

/// Routes added one method at a time; turned into an axum [`Router`] at the end.
pub struct RouteTable<S> {
    paths: BTreeMap<String, PathRoutes<S>>,
}

impl<S> Default for RouteTable<S> {
    fn default() -> Self {
        Self {
            paths: BTreeMap::new(),
        }
    }
}

macro_rules! method {
    ($name:ident, $guarded:ident, $method:ident) => {
        #[doc = concat!("Serves `", stringify!($method), " path` with `handler`, to anyone.")]
        pub fn $name<H, T>(self, path: &str, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            self.add(path, Method::$method, Access::Public, routing::$name(handler))
        }

        #[doc = concat!("Serves `", stringify!($method), " path` with `handler`, to principals holding `permission`.")]
        pub fn $guarded<H, T>(self, path: &str, permission: Permission, handler: H) -> Self
        where
            H: Handler<T, S>,
            T: 'static,
        {
            self.add(
                path,
                Method::$method,
                Access::Requires(permission),
                routing::$name(handler).layer(Extension(RequiredPermission(permission))),
            )
        }
    };
}

impl<S> RouteTable<S>
where
    S: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self::default()
    }

    method!(get, get_as, GET);
    method!(post, post_as, POST);
    method!(put, put_as, PUT);
    method!(patch, patch_as, PATCH);
    method!(delete, delete_as, DELETE);

    fn add(
        mut self,
        path: &str,
        method: Method,
        access: Access,
        method_router: MethodRouter<S>,
    ) -> Self {
        match self.paths.remove(path) {
            Some((mut methods, existing)) => {
                // `merge` panics when both serve the same method: a programming error
                // caught by the first test that builds the router.
                methods.push((method, access));
                self.paths
                    .insert(path.to_owned(), (methods, existing.merge(method_router)));
            }
            None => {
                self.paths
                    .insert(path.to_owned(), (vec![(method, access)], method_router));
            }
        }
        self
    }

    /// Adds every route of `other` under `prefix` (e.g. `/ra`).
    pub fn nest(mut self, prefix: &str, other: RouteTable<S>) -> Self {
        let prefix = prefix.trim_end_matches('/');
        for (path, (methods, method_router)) in other.paths {
            let full = format!("{prefix}{path}");
            match self.paths.remove(&full) {
                Some((mut existing_methods, existing)) => {
                    existing_methods.extend(methods);
                    self.paths
                        .insert(full, (existing_methods, existing.merge(method_router)));
                }
                None => {
                    self.paths.insert(full, (methods, method_router));
                }
            }
        }
        self
    }

    /// Every (METHOD, path) served, sorted. `GET` implies `HEAD` in axum; only `GET` is listed.
    pub fn list(&self) -> Vec<(String, String)> {
        self.access()
            .into_iter()
            .map(|(method, path, _)| (method, path))
            .collect()
    }

    /// Every (METHOD, path, access) served, sorted: what the role matrix tests.
    pub fn access(&self) -> Vec<(String, String, Access)> {
        let mut routes: Vec<(String, String, Access)> = self
            .paths
            .iter()
            .flat_map(|(path, (methods, _))| {
                methods.iter().map(move |(method, access)| {
                    (method.as_str().to_owned(), path.clone(), *access)
                })
            })
            .collect();
        routes.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        routes
    }

    pub fn into_router(self) -> Router<S> {
        self.paths
            .into_iter()
            .fold(Router::new(), |router, (path, (_, method_router))| {
                router.route(&path, method_router)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn every_method_and_path_is_listed() {
        let table = RouteTable::<()>::new()
            .get("/a", ok)
            .post("/a", ok)
            .delete("/b/{id}", ok)
            .nest("/admin/", RouteTable::new().put("/c", ok));
        let expected = [
            ("DELETE", "/b/{id}"),
            ("GET", "/a"),
            ("POST", "/a"),
            ("PUT", "/admin/c"),
        ]
        .map(|(m, p)| (m.to_owned(), p.to_owned()));
        assert_eq!(table.list(), expected);
        let _router: Router = table.into_router();
    }
}
