"""resolvers/audit"""
