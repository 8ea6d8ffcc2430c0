"""resolvers/data"""
